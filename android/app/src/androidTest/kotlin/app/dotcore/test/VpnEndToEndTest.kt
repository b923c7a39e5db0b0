package app.dotcore.test

import android.content.Context
import android.os.Build
import android.os.ParcelFileDescriptor
import app.dotcore.DotVpnService
import app.dotcore.SettingsRepository
import app.dotcore.ffi.Mode
import app.dotcore.ffi.providers
import app.dotcore.logic.AppStatus
import app.dotcore.logic.CustomServerInput
import app.dotcore.logic.ServerChoice
import app.dotcore.logic.ServiceState
import app.dotcore.logic.Settings
import app.dotcore.logic.StatusHub
import app.dotcore.logic.Warning
import app.dotcore.shared.AppChecks
import app.dotcore.shared.AppDriver
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import java.io.FileInputStream
import java.util.UUID

/**
 * The app on a device or emulator with internet access: the real service,
 * tunnel, engine and public DoT providers. Run by scripts/emulator-test.sh
 * (`./gradlew connectedAndroidTest`); they cannot run on the development
 * machines of this repository (no SDK, no emulator, no internet).
 *
 * DNS is sent the way apps send it: `ping` run by the shell user, whose
 * default network is our VPN, resolves through the system resolver, which
 * sends the query to the tunnel's virtual DNS server. (The app itself is
 * excluded from its own tunnel, so the test process could not.)
 */
class VpnEndToEndTest {
    private val runner = DotTestRunner.instance
    private val context: Context = runner.targetContext
    private val hub = StatusHub.DEFAULT
    private val repository = SettingsRepository(context)

    @Before
    fun setUp() {
        // The consent the VPN dialog would give, and the notification permission.
        shell("appops set ${context.packageName} ACTIVATE_VPN allow")
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            shell("pm grant ${context.packageName} android.permission.POST_NOTIFICATIONS")
        }
        stopService()
    }

    @After
    fun tearDown() {
        stopService()
        shell("settings put global private_dns_mode opportunistic")
    }

    @Test
    fun resolvesThroughTheTunnelWithAnAuthenticatedServer() {
        startWith(Settings(server = ServerChoice.Provider("cloudflare"), mode = Mode.STRICT, queryLog = true))
        val before = hub.refreshStats().stats.queries
        val out = ping(uniqueName("example.com"))
        // NXDOMAIN is an answer too; what matters is that it came from us.
        waitFor("a query reached the engine") { hub.refreshStats().stats.queries > before }
        waitFor("the server validated") { hub.status.value.server.validatedServer != null }
        val status = hub.status.value
        assertTrue("strict mode authenticates: $status", status.server.authenticated)
        assertEquals(0, status.stats.cleartextQueries)
        assertTrue("the query log saw it", hub.queryLog.snapshot().isNotEmpty())
        // A name that exists resolves.
        val real = ping("one.one.one.one")
        assertFalse("resolution failed: $real / $out", real.contains("unknown host"))
    }

    @Test
    fun strictModeFailsClosedWhenThePinIsWrong() {
        val wrongPin = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // 32 zero bytes: no real key
        startWith(
            Settings(
                server = ServerChoice.Custom,
                custom = CustomServerInput(hostname = "cloudflare-dns.com", addresses = "1.1.1.1", pins = wrongPin),
                mode = Mode.STRICT,
            ),
        )
        val out = ping(uniqueName("example.org"))
        assertTrue("must not resolve: $out", out.contains("unknown host"))
        AppChecks.assertFailedClosed(device)
        assertTrue("queries failed: ${device.status.stats}", device.status.stats.failures > 0)
    }

    @Test
    fun providerSwitchRestartsTheEngineButKeepsTheTunnel() {
        val quad9 = Settings(server = ServerChoice.Provider("quad9"))
        AppChecks.engineChangeKeepsTheTunnel(
            device,
            first = Settings(server = ServerChoice.Provider("cloudflare")),
            other = quad9,
            otherLabel = providers().first { it.id == "quad9" }.displayName,
        )
        val out = ping("dns.quad9.net")
        assertFalse("resolution through Quad9 failed: $out", out.contains("unknown host"))
        waitFor("Quad9 validated") { hub.status.value.server.validatedServer != null }
        AppChecks.excludedAppsRebuildTheTunnel(device, quad9.copy(excludedApps = setOf("com.android.settings")))
    }

    @Test
    fun androidsStrictPrivateDnsIsReported() {
        startWith(Settings(server = ServerChoice.Provider("cloudflare")))
        shell("settings put global private_dns_specifier one.one.one.one")
        shell("settings put global private_dns_mode hostname")
        waitFor("the warning is shown") { Warning.PRIVATE_DNS_STRICT in hub.status.value.warnings }
        shell("settings put global private_dns_mode opportunistic")
        waitFor("the warning goes away") { Warning.PRIVATE_DNS_STRICT !in hub.status.value.warnings }
    }

    // --- helpers ---------------------------------------------------------------

    /** The shared checks' view of this device. */
    private val device = object : AppDriver {
        override val status: AppStatus get() = hub.refreshStats()

        override fun start(settings: Settings) = startWith(settings)

        override fun apply(settings: Settings) = this@VpnEndToEndTest.apply(settings)

        override fun waitFor(what: String, timeoutMillis: Long, condition: () -> Boolean) =
            this@VpnEndToEndTest.waitFor(what, timeoutMillis, condition)
    }

    private fun startWith(settings: Settings) {
        repository.save(settings)
        DotVpnService.start(context)
        waitFor("the service runs") { hub.status.value.service is ServiceState.Running }
    }

    private fun apply(settings: Settings) {
        repository.save(settings)
        DotVpnService.applySettings(context)
    }

    private fun stopService() {
        if (hub.status.value.service.isOn) {
            DotVpnService.stop(context)
            waitFor("the service stops") { !hub.status.value.service.isOn }
        }
    }

    private fun uniqueName(base: String) = "dotcore-${UUID.randomUUID().toString().take(8)}.$base"

    /** `ping -c 1` as the shell user: resolution through the VPN's DNS. */
    private fun ping(name: String): String = shell("ping -c 1 -W 3 $name")

    private fun shell(command: String): String {
        val pfd: ParcelFileDescriptor = runner.uiAutomation.executeShellCommand(command)
        return FileInputStream(pfd.fileDescriptor).use { input ->
            input.readBytes().toString(Charsets.UTF_8)
        }.also { pfd.close() }
    }

    private fun waitFor(what: String, timeoutMillis: Long = 20_000, condition: () -> Boolean) {
        val deadline = System.currentTimeMillis() + timeoutMillis
        while (System.currentTimeMillis() < deadline) {
            if (condition()) return
            Thread.sleep(100)
        }
        val status: AppStatus = hub.refreshStats()
        throw AssertionError("timed out waiting until $what; status: $status")
    }
}
