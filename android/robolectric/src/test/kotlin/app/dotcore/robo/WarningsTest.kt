package app.dotcore.robo

import android.net.NetworkCapabilities
import android.widget.TextView
import app.dotcore.DotVpnService
import app.dotcore.MainActivity
import app.dotcore.logic.Settings
import app.dotcore.logic.Warning
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf

/** The two platform settings that break a DNS-only VPN, as the status screen reports them. */
@RunWith(RobolectricTestRunner::class)
class WarningsTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp(dnsServers = null, settings = Settings())
    }

    @After fun tearDown() {
        endTest(running)
    }

    /** What the status screen shows in its warning line, once the service runs. */
    private fun warningShown(screenshot: String? = null): String {
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        awaitUntil("a warning is shown") {
            activity.window.decorView.all(TextView::class.java).any { it.isShown && it.text.startsWith("⚠") }
        }
        if (screenshot != null) ScreenshotTest.capture(activity, screenshot)
        return activity.window.decorView.all(TextView::class.java).first { it.text.startsWith("⚠") }.text.toString()
    }

    @Test
    fun `Android's Private DNS in strict mode produces the warning`() {
        val (network, link) = configureNetwork(listOf("192.0.2.1"), privateDnsServerName = "dns.example.org")
        running = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { it.awaitRunning() }
        // What the system does right after registerDefaultNetworkCallback.
        val callback = shadowOf(connectivity).networkCallbacks.single()
        callback.onAvailable(network)
        callback.onCapabilitiesChanged(network, connectivity.getNetworkCapabilities(network) ?: NetworkCapabilities())
        callback.onLinkPropertiesChanged(network, link)
        awaitUntil("warning published") { status.warnings.isNotEmpty() }
        assertEquals(listOf(Warning.PRIVATE_DNS_STRICT), status.warnings)
        assertEquals("⚠ ${Warning.PRIVATE_DNS_STRICT.text}", warningShown())
    }

    @Test
    fun `always-on lockdown produces the warning`() {
        configureNetwork(listOf("192.0.2.1"))
        ShadowProtectingVpnService.lockdown = true
        running = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { it.awaitRunning() }
        awaitUntil("warning published") { status.warnings.isNotEmpty() }
        assertEquals(listOf(Warning.LOCKDOWN), status.warnings)
        assertTrue(warningShown(screenshot = "main-warning").contains("Block connections without VPN"))
    }

    /** The recheck requests the status screen sent to the service since the last call. */
    private fun rechecks(): List<android.content.Intent> =
        generateSequence { shadowOf(app).nextStartedService }.filter { it.action == DotVpnService.ACTION_RECHECK }.toList()

    @Test
    fun `the lockdown warning follows the setting when the status screen comes back`() {
        configureNetwork(listOf("192.0.2.1"))
        val r = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { running = it }
        r.awaitRunning()
        val tunnels = status.tunnelGeneration
        val screen = Robolectric.buildActivity(MainActivity::class.java).setup()
        fun warningLine() = screen.get().window.decorView.all(TextView::class.java)
            .firstOrNull { it.isShown && it.text.startsWith("⚠") }?.text?.toString()
        awaitUntil("rendered") { true }
        assertEquals("no warning while lockdown is off", null, warningLine())

        // The user leaves for the VPN settings and turns lockdown on.
        screen.pause().stop()
        rechecks()
        ShadowProtectingVpnService.lockdown = true
        screen.restart().start().resume()
        val sent = rechecks()
        assertEquals("resuming asks the running service to recheck", 1, sent.size)
        r.command(sent.single())
        awaitUntil("the lockdown warning is shown") { warningLine()?.contains("Block connections without VPN") == true }
        assertEquals(listOf(Warning.LOCKDOWN), status.warnings)

        // And off again.
        screen.pause()
        ShadowProtectingVpnService.lockdown = false
        screen.resume()
        r.command(rechecks().single())
        awaitUntil("the warning is gone") { warningLine() == null }
        assertEquals(emptyList<Warning>(), status.warnings)
        assertEquals("rechecking does not rebuild the tunnel", tunnels, status.tunnelGeneration)
    }

    @Test
    fun `Android's always-on start to a running service rereads lockdown`() {
        configureNetwork(listOf("192.0.2.1"))
        val r = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { running = it }
        r.awaitRunning()
        val tunnels = status.tunnelGeneration
        val engines = status.engineGeneration
        assertEquals(emptyList<Warning>(), status.warnings)
        // Android starts the always-on VPN's service again (action
        // android.net.VpnService) when its always-on settings change.
        ShadowProtectingVpnService.lockdown = true
        r.command(android.content.Intent(android.net.VpnService.SERVICE_INTERFACE))
        awaitUntil("lockdown warning published") { status.warnings == listOf(Warning.LOCKDOWN) }
        assertTrue(status.service is app.dotcore.logic.ServiceState.Running)
        assertEquals("same tunnel", tunnels, status.tunnelGeneration)
        assertEquals("same engine", engines, status.engineGeneration)
    }
}
