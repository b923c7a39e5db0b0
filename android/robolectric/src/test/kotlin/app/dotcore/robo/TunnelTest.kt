package app.dotcore.robo

import app.dotcore.DotVpnService
import app.dotcore.SettingsRepository
import app.dotcore.ffi.Mode
import app.dotcore.ffi.tunnelConfig
import app.dotcore.logic.CustomServerInput
import app.dotcore.logic.ServerChoice
import app.dotcore.logic.Settings
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.ClassRule
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner

/**
 * The tunnel DotVpnService asks the system for, and the engine it starts on
 * that tunnel: queries sent into the descriptor are answered by the local
 * Unbound DoT server the user configured.
 */
@RunWith(RobolectricTestRunner::class)
class TunnelTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp(listOf("192.0.2.53", "2001:db8::53"))
    }

    @After fun tearDown() {
        endTest(running)
    }

    private fun customServer(pin: String, mode: Mode = Mode.STRICT, excluded: Set<String> = emptySet()) = Settings(
        server = ServerChoice.Custom,
        custom = CustomServerInput(hostname = unbound.dotName, addresses = unbound.dot, pins = pin),
        mode = mode,
        excludedApps = excluded,
    )

    private fun start(settings: Settings): RunningService {
        SettingsRepository(app).save(settings)
        return RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also {
            running = it
            it.awaitRunning()
        }
    }

    @Test
    fun `the tunnel carries exactly the virtual DNS addresses and leaves the app and excluded apps out`() {
        installApp("com.example.browser")
        val settings = customServer(unbound.leafPin, excluded = setOf("com.example.browser", "com.example.uninstalled"))
        start(settings)

        val spec = ShadowTunBuilder.established.single()
        val tunnel = tunnelConfig()
        val virtual = tunnel.dnsServers
        assertTrue("IPv4 and IPv6 virtual DNS", virtual.any { ':' in it } && virtual.any { ':' !in it })
        assertEquals(virtual, spec.dnsServers)
        assertEquals(virtual.map { it to if (':' in it) 128 else 32 }, spec.routes)
        assertEquals(tunnel.routes.map { it.address to it.prefixLength }, spec.routes)
        assertEquals(tunnel.interfaceAddresses.map { it.address to it.prefixLength }, spec.addresses)
        // The app's own sockets never enter its tunnel; an uninstalled exclusion is skipped, not fatal.
        assertEquals(listOf("app.dotcore", "com.example.browser"), spec.disallowed)
        assertEquals(listOf(connectivity.activeNetwork), spec.underlying)
        assertEquals(unbound.dotName, spec.session)
        assertEquals("the MTU is the core's", tunnel.mtu, spec.mtu)
        assertEquals("the engine polls the descriptor: non-blocking", false, spec.blocking)
    }

    @Test
    fun `the engine runs on the tunnel with the user's server, mode and pins`() {
        start(customServer(unbound.leafPin, Mode.STRICT))
        assertEquals(Mode.STRICT, status.mode)
        assertEquals(unbound.dotName, status.serverLabel)

        val answer = queryThroughTunnel(unbound.aName, 0x1234)
        assertNotNull("no answer through the tunnel", answer)
        assertEquals(0, Packets.rcode(answer!!))
        assertEquals(unbound.aV4, Packets.lastA(answer))
        awaitUntil("server validated") { status.server.validated }
        assertTrue("strict mode with a matching pin is authenticated", status.server.authenticated)
        assertFalse("the engine protected its upstream socket", ShadowProtectingVpnService.protectedFds.isEmpty())
    }

    @Test
    fun `a pin that does not match the server gets no answer in strict mode`() {
        start(customServer(unbound.caPin, Mode.STRICT))
        val answer = queryThroughTunnel(unbound.aName, 0x4321, timeoutMillis = 8_000)
        assertTrue(
            "with the wrong pin the server must not be trusted (got ${answer?.let { Packets.lastA(it) }})",
            answer == null || Packets.rcode(answer) != 0 || Packets.answers(answer) == 0,
        )
        awaitUntil("a failure is reported") { status.server.lastFailure != null }
        assertFalse(status.server.validated)
    }

    private val unbound get() = fixture.server

    companion object {
        @ClassRule @JvmField val fixture = UnboundPerClass()
    }
}
