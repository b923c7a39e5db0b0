package app.dotcore.robo

import android.app.NotificationManager
import android.widget.Switch
import android.widget.TextView
import app.dotcore.DotVpnService
import app.dotcore.MainActivity
import app.dotcore.logic.ServiceState
import app.dotcore.logic.Settings
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import java.io.File

/**
 * A start that fails must end where the user sees it: the status screen
 * says why, an alert notification says why, the ongoing notification is
 * gone and the service has stopped itself; never "Starting…" forever.
 */
@RunWith(RobolectricTestRunner::class)
class StartFailureTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp(settings = Settings())
    }

    @After fun tearDown() {
        endTest(running)
    }

    /** Starts the service with the status screen open; returns the screen once the start failed with [reason]. */
    private fun startAndAwaitStop(reason: String): MainActivity {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        running = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START))
        awaitUntil("the start fails with \"$reason\"") {
            status.service.let { it is ServiceState.Stopped && it.error?.contains(reason) == true }
        }
        return activity
    }

    /** Everything the user sees of a failed start, with [reason] in it. */
    private fun assertVisibleFailure(activity: MainActivity, reason: String) {
        val error = (status.service as ServiceState.Stopped).error!!
        assertTrue("the reason is kept: $error", error.contains(reason))
        val root = activity.window.decorView
        awaitUntil("the status screen shows the failure") {
            root.all(TextView::class.java).any { it.isShown && it.text.toString() == "Stopped: $error" }
        }
        awaitUntil("the switch shows off") { !root.all(Switch::class.java).single().isChecked }

        val alerts = shadowOf(app.getSystemService(NotificationManager::class.java)).allNotifications
            .filter { it.channelId == "alerts" }
        val alert = alerts.singleOrNull()
        assertNotNull("one alert notification, got $alerts", alert)
        assertEquals("dotcore stopped", alert!!.extras.getCharSequence("android.title").toString())
        assertEquals(error, alert.extras.getCharSequence("android.text").toString())

        val service = shadowOf(running!!.service)
        assertTrue("the ongoing notification is removed", service.isForegroundStopped)
        assertTrue("the service stops itself", service.isStoppedBySelf)
    }

    @Test
    fun `a descriptor the real engine rejects ends the start in a visible failure`() {
        // A regular file: it opens, but epoll cannot watch it, so the core's
        // start() refuses it as a TUN device.
        val f = File.createTempFile("not-a-tun", ".bin").apply { deleteOnExit() }
        ShadowTunBuilder.descriptor = {
            LibC.INSTANCE.open(f.path, LibC.O_RDWR).also { check(it >= 0) { "open ${f.path} failed" } }
        }
        val activity = startAndAwaitStop("tunnel: ")
        assertVisibleFailure(activity, "tunnel: ")
        assertEquals(
            "the engine that was created is stopped again",
            listOf(SpyDotEngine.Call.Stopped(running = false)),
            SpyDotEngine.stopsReturned(),
        )
    }

    @Test
    fun `an exception while building the tunnel ends the start in a visible failure, not in Starting`() {
        // What VpnService.Builder.establish() throws for a configuration the
        // system rejects; the service did not expect this one.
        ShadowTunBuilder.failure = IllegalArgumentException("Bad address")
        val activity = startAndAwaitStop("the VPN could not be set up: Bad address")
        assertVisibleFailure(activity, "the VPN could not be set up: Bad address")
        assertTrue("no engine was started", SpyDotEngine.started.isEmpty())
    }
}
