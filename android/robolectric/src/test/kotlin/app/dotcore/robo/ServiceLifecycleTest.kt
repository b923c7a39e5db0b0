package app.dotcore.robo

import android.os.Handler
import android.os.Looper
import app.dotcore.DotVpnService
import app.dotcore.logic.ServiceState
import app.dotcore.logic.Settings
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

/** How the service ends when the system destroys it: off the main thread, and completely. */
@RunWith(RobolectricTestRunner::class)
class ServiceLifecycleTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp(settings = Settings())
    }

    @After fun tearDown() {
        endTest(running)
    }

    @Test
    fun `onDestroy does not block the main thread on the engine's stop, and the engine still stops`() {
        val r = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { running = it }
        r.awaitRunning()
        val engine = SpyDotEngine.started.single()
        val peer = ShadowTunBuilder.peerFd
        assertTrue(engine.isRunning())

        // The engine's stop() takes as long as the test wants.
        val gate = CountDownLatch(1)
        SpyDotEngine.stopGate = gate
        val began = System.nanoTime()
        r.controller.destroy()
        val tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - began)
        assertTrue("onDestroy took $tookMillis ms: it waited for the engine", tookMillis < 1_000)

        // The main looper keeps running while the engine is being stopped.
        var ran = false
        Handler(Looper.getMainLooper()).post { ran = true }
        shadowOf(Looper.getMainLooper()).idle()
        assertTrue("the main looper ran a message during the stop", ran)
        awaitUntil("stop() called on the engine") { SpyDotEngine.Call.Stop in SpyDotEngine.calls }
        assertTrue("held: the engine has not stopped yet", SpyDotEngine.stopsReturned().isEmpty())
        assertTrue("held: the engine still has its tunnel", engine.isRunning())
        assertFalse("held: the tunnel is still open", LibC.peerClosed(peer, 300))

        gate.countDown()
        awaitUntil("the real engine's stop() returned") { SpyDotEngine.stopsReturned().isNotEmpty() }
        assertEquals("the engine says it stopped", listOf(SpyDotEngine.Call.Stopped(running = false)), SpyDotEngine.stopsReturned())
        awaitUntil("the status says stopped") { status.service is ServiceState.Stopped }
        assertEquals("stopped by the system, not with an error", ServiceState.Stopped(null), status.service)
        assertTrue(
            "the tunnel is closed: both the service's descriptor and the engine's copy",
            LibC.peerClosed(peer, 10_000),
        )
        assertEquals("stop() once", 1, SpyDotEngine.calls.count { it == SpyDotEngine.Call.Stop })
        assertFalse(status.service.isOn)
        running = null
    }
}
