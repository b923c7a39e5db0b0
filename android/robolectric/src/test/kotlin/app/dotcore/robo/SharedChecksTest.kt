package app.dotcore.robo

import app.dotcore.ffi.Mode
import app.dotcore.logic.CustomServerInput
import app.dotcore.logic.ServerChoice
import app.dotcore.logic.Settings
import app.dotcore.shared.AppChecks
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Before
import org.junit.ClassRule
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner

/**
 * The checks the instrumented tests (app/src/androidTest) run on a device,
 * here against the local Unbound server: the same code (app/src/sharedTest).
 */
@RunWith(RobolectricTestRunner::class)
class SharedChecksTest {
    private val driver = RobolectricDriver()

    @Before fun setUp() {
        freshApp()
    }

    @After fun tearDown() {
        endTest(driver.running)
    }

    private fun custom(pin: String, mode: Mode = Mode.STRICT) = Settings(
        server = ServerChoice.Custom,
        custom = CustomServerInput(hostname = unbound.dotName, addresses = unbound.dot, pins = pin),
        mode = mode,
    )

    @Test
    fun `a server change restarts the engine on the same tunnel, excluded apps rebuild it`() {
        installApp("com.example.browser")
        AppChecks.engineChangeKeepsTheTunnel(
            driver,
            first = Settings(),
            other = custom(unbound.leafPin),
            otherLabel = unbound.dotName,
        )
        // The new engine answers on the old tunnel.
        assertEquals(unbound.aV4, queryThroughTunnel(unbound.aName, 0x5001)?.let { Packets.lastA(it) })
        AppChecks.excludedAppsRebuildTheTunnel(driver, custom(unbound.leafPin).copy(excludedApps = setOf("com.example.browser")))
        assertEquals(listOf("app.dotcore", "com.example.browser"), ShadowTunBuilder.established.last().disallowed)
    }

    @Test
    fun `strict mode with a wrong pin fails closed`() {
        driver.start(custom(unbound.caPin))
        queryThroughTunnel(unbound.aName, 0x5002, timeoutMillis = 8_000)
        AppChecks.assertFailedClosed(driver)
    }

    private val unbound get() = fixture.server

    companion object {
        @ClassRule @JvmField val fixture = UnboundPerClass()
    }
}
