package app.dotcore.robo

import android.app.Activity
import android.app.Notification
import android.app.NotificationManager
import android.content.ComponentName
import android.content.Intent
import android.content.pm.ServiceInfo
import android.widget.Switch
import android.widget.TextView
import app.dotcore.DotVpnService
import app.dotcore.MainActivity
import app.dotcore.ffi.providers
import app.dotcore.logic.ServiceState
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf

@RunWith(RobolectricTestRunner::class)
class FirstStartTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp(listOf("127.0.0.1"))
    }

    @After fun tearDown() {
        endTest(running)
    }

    @Test
    fun `the app comes up from the real manifest with its application and resources`() {
        assertEquals("app.dotcore", app.packageName)
        assertEquals("app.dotcore.DotApp", app.javaClass.name)
        // A string from the APK build's compiled resources, by name (the app has no R class).
        val id = app.resources.getIdentifier("app_name", "string", "app.dotcore")
        assertTrue("app_name is not in the compiled resources", id != 0)
        assertEquals("dotcore", app.getString(id))
        val service = app.packageManager.getServiceInfo(ComponentName(app, DotVpnService::class.java), 0)
        assertEquals(android.Manifest.permission.BIND_VPN_SERVICE, service.permission)
    }

    @Test
    fun `first start shows the core's default provider, asks for consent, then runs in the foreground`() {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        val root = activity.window.decorView
        val toggle = root.all(Switch::class.java).single()
        assertFalse("a fresh install starts off", toggle.isChecked)
        val default = providers().first()
        assertTrue(
            "the server line names the catalogue's default provider ${default.displayName}",
            root.all(TextView::class.java).any { it.text.toString() == "Server: ${default.displayName}" },
        )

        // No consent yet: prepare() returns the system's consent dialog.
        val consent = Intent("com.android.vpndialogs.ConfirmDialog")
        ShadowProtectingVpnService.consent = consent
        toggle.performClick()
        val asked = shadowOf(activity).nextStartedActivityForResult
        assertNotNull("pressing the switch must ask for VPN consent", asked)
        assertEquals(consent.action, asked.intent.action)
        assertNull("nothing may start before consent", shadowOf(app).peekNextStartedService())

        // The user allows it.
        ShadowProtectingVpnService.consent = null
        shadowOf(activity).receiveResult(asked.intent, Activity.RESULT_OK, null)
        val start = shadowOf(app).nextStartedService
        assertNotNull("consent must start DotVpnService", start)
        assertEquals(ComponentName(app, DotVpnService::class.java), start.component)

        val r = RunningService(start).also { running = it }
        val shadow = shadowOf(r.service)
        val ongoing = shadow.lastForegroundNotification
        assertNotNull("the service must enter the foreground", ongoing)
        assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_SYSTEM_EXEMPTED, r.service.foregroundServiceType)
        assertTrue("the notification is ongoing", ongoing.flags and Notification.FLAG_ONGOING_EVENT != 0)
        val nm = app.getSystemService(NotificationManager::class.java)
        val channel = nm.getNotificationChannel(ongoing.channelId)
        assertNotNull("channel ${ongoing.channelId} must exist", channel)
        assertEquals("status", channel.id)
        assertEquals(NotificationManager.IMPORTANCE_LOW, channel.importance)
        assertEquals(1, ongoing.actions.size)
        assertEquals("Stop", ongoing.actions[0].title.toString())

        r.awaitRunning()
        awaitUntil("the switch shows on") { toggle.isChecked }
        assertEquals(1, ShadowTunBuilder.established.size)

        // Off again from the switch: the stop action reaches the service.
        toggle.performClick()
        val stop = shadowOf(app).nextStartedService
        assertEquals(DotVpnService.ACTION_STOP, stop.action)
        r.command(stop)
        awaitUntil("service Stopped") { status.service is ServiceState.Stopped }
        awaitUntil("the switch shows off") { !toggle.isChecked }
        assertTrue("the ongoing notification is removed", shadow.isForegroundStopped)
    }
}
