package app.dotcore.robo

import android.content.Intent
import android.net.NetworkCapabilities
import android.os.PowerManager
import android.service.quicksettings.Tile
import app.dotcore.BootReceiver
import app.dotcore.DotTileService
import app.dotcore.DotVpnService
import app.dotcore.MainActivity
import app.dotcore.SettingsRepository
import app.dotcore.ffi.PowerState
import app.dotcore.logic.ServiceState
import app.dotcore.logic.Settings
import org.junit.After
import java.net.InetAddress
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.shadows.ShadowNetwork

/** Platform signals reaching the real engine through the service (the default provider; no upstream needed). */
@RunWith(RobolectricTestRunner::class)
class SystemEventsTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp()
    }

    @After fun tearDown() {
        endTest(running)
    }

    private fun startService(): RunningService {
        SettingsRepository(app).save(Settings())
        return RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also {
            running = it
            it.awaitRunning()
        }
    }

    @Test
    fun `network changes reach onNetworkChanged with the new DNS servers, debounced`() {
        startService()
        val callback = shadowOf(connectivity).networkCallbacks.single()
        val caps = NetworkCapabilities.Builder()
            .addTransportType(NetworkCapabilities.TRANSPORT_CELLULAR)
            .addCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET)
            .addCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED)
            .build()
        // A burst, as a Wi-Fi to cellular hand-over produces: only the last one counts.
        val cellular = ShadowNetwork.newInstance(7)
        for (dns in listOf(listOf("198.51.100.1"), listOf("198.51.100.2"), listOf("203.0.113.7", "2001:db8::7"))) {
            val (_, link) = configureNetwork(dns, network = cellular)
            callback.onCapabilitiesChanged(cellular, caps)
            callback.onLinkPropertiesChanged(cellular, link)
        }
        awaitUntil("a network change reaches the engine") { SpyDotEngine.networks().isNotEmpty() }
        Thread.sleep(LONGER_THAN_DEBOUNCE_MILLIS)
        awaitUntil("settled") { true }
        // Compared as addresses: the JVM's InetAddress writes IPv6 uncompressed, Android's compressed.
        assertEquals(
            listOf(listOf("203.0.113.7", "2001:db8::7").map(InetAddress::getByName)),
            SpyDotEngine.networks().map { servers -> servers.map(InetAddress::getByName) },
        )
        // The new default network is the VPN's underlying network at once, not debounced.
        assertEquals(listOf(cellular), ShadowProtectingVpnService.underlying)
    }

    @Test
    fun `screen, doze and battery saver broadcasts reach setPowerState`() {
        startService()
        val pm = shadowOf(app.getSystemService(PowerManager::class.java))
        fun broadcast(action: String) {
            app.sendBroadcast(Intent(action))
            awaitUntil("$action delivered") { true }
        }
        pm.setIsInteractive(false)
        broadcast(Intent.ACTION_SCREEN_OFF)
        pm.setIsDeviceIdleMode(true)
        broadcast(PowerManager.ACTION_DEVICE_IDLE_MODE_CHANGED)
        pm.setIsDeviceIdleMode(false)
        pm.setIsInteractive(true)
        broadcast(PowerManager.ACTION_DEVICE_IDLE_MODE_CHANGED)
        broadcast(Intent.ACTION_SCREEN_ON)
        pm.setIsPowerSaveMode(true)
        broadcast(PowerManager.ACTION_POWER_SAVE_MODE_CHANGED)
        val expected = listOf(
            PowerState.INTERACTIVE, // at engine start
            PowerState.IDLE,
            PowerState.DEEP_IDLE,
            PowerState.INTERACTIVE,
            PowerState.DEEP_IDLE,
        )
        awaitUntil("power states delivered") { SpyDotEngine.powers().size >= expected.size }
        assertEquals(expected, SpyDotEngine.powers())
    }

    @Test
    fun `onRevoke stops the engine and removes the notification`() {
        val r = startService()
        r.service.onRevoke()
        awaitUntil("stopped after revoke") { status.service is ServiceState.Stopped }
        awaitUntil("engine stopped") { SpyDotEngine.Call.Stop in SpyDotEngine.calls }
        assertTrue("foreground notification removed", shadowOf(r.service).isForegroundStopped)
        assertTrue("the service stops itself", shadowOf(r.service).isStoppedBySelf)
    }

    @Test
    fun `boot starts the VPN only when the user chose it`() {
        SettingsRepository(app).save(Settings(startOnBoot = false))
        BootReceiver().onReceive(app, Intent(Intent.ACTION_BOOT_COMPLETED))
        assertNull("no start on boot unless chosen", shadowOf(app).peekNextStartedService())

        SettingsRepository(app).save(Settings(startOnBoot = true))
        BootReceiver().onReceive(app, Intent(Intent.ACTION_BOOT_COMPLETED))
        val started = shadowOf(app).nextStartedService
        assertNotNull("start on boot when chosen", started)
        assertEquals(DotVpnService.ACTION_START, started.action)
    }

    @Test
    fun `the tile reflects the state and toggles it`() {
        val tile = Robolectric.buildService(DotTileService::class.java).create().get()
        tile.onStartListening()
        assertEquals(Tile.STATE_INACTIVE, tile.qsTile.state)
        tile.onClick()
        val start = shadowOf(app).nextStartedService
        assertEquals(DotVpnService.ACTION_START, start?.action)
        running = RunningService(start).also { it.awaitRunning() }
        tile.onStartListening()
        assertEquals(Tile.STATE_ACTIVE, tile.qsTile.state)
        tile.onClick()
        assertEquals(DotVpnService.ACTION_STOP, shadowOf(app).nextStartedService?.action)
    }

    @Test
    fun `a tile tap without VPN consent opens the app's consent flow`() {
        SettingsRepository(app).save(Settings())
        val consent = Intent("com.android.vpndialogs.ConfirmDialog")
        ShadowProtectingVpnService.consent = consent
        val tile = Robolectric.buildService(DotTileService::class.java).create().get()
        tile.onStartListening()
        tile.onClick()
        assertNull("nothing may start before consent", shadowOf(app).peekNextStartedService())
        assertNotNull("the tile collapses the shade into an activity", ShadowCollapsingTileService.collapsedTo)
        val opened = shadowOf(app).nextStartedActivity
        assertNotNull("the tap opens an activity", opened)
        assertEquals(android.content.ComponentName(app, MainActivity::class.java), opened.component)

        // That activity asks for the consent at once, as its switch would.
        val screen = Robolectric.buildActivity(MainActivity::class.java, opened).setup().get()
        val asked = shadowOf(screen).nextStartedActivityForResult
        assertNotNull("the app must show Android's VPN consent dialog", asked)
        assertEquals(consent.action, asked.intent.action)

        // Allowed: the VPN starts.
        ShadowProtectingVpnService.consent = null
        shadowOf(screen).receiveResult(asked.intent, android.app.Activity.RESULT_OK, null)
        val start = shadowOf(app).nextStartedService
        assertEquals(DotVpnService.ACTION_START, start?.action)
        running = RunningService(start).also { it.awaitRunning() }
        tile.onStartListening()
        assertEquals(Tile.STATE_ACTIVE, tile.qsTile.state)
    }

    private companion object {
        /** Longer than the service's debounce quiet time (1 s), so a second delivery would show. */
        const val LONGER_THAN_DEBOUNCE_MILLIS = 2_500L
    }
}
