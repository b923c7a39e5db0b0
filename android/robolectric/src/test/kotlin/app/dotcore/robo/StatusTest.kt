package app.dotcore.robo

import android.widget.TextView
import app.dotcore.DotVpnService
import app.dotcore.MainActivity
import app.dotcore.SettingsRepository
import app.dotcore.ffi.Mode
import app.dotcore.logic.CustomServerInput
import app.dotcore.logic.ServerChoice
import app.dotcore.logic.Settings
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.ClassRule
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner

/**
 * The status screen fed by the real engine resolving through the local
 * Unbound DoT server: counters, validation, the query log. Also renders the
 * screens it reaches to PNG (native graphics).
 */
@RunWith(RobolectricTestRunner::class)
class StatusTest {
    private var running: RunningService? = null

    @Before fun setUp() {
        freshApp()
    }

    @After fun tearDown() {
        endTest(running)
    }

    @Test
    fun `counters, validation and the query log come from the engine's real answers`() {
        SettingsRepository(app).save(
            Settings(
                server = ServerChoice.Custom,
                custom = CustomServerInput(hostname = unbound.dotName, addresses = unbound.dot, pins = unbound.leafPin),
                mode = Mode.STRICT,
                queryLog = true,
            ),
        )
        running = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { it.awaitRunning() }
        val first = queryThroughTunnel(unbound.aName, 0x2001)
        assertNotNull("first answer", first)
        assertEquals(
            "rcode ${Packets.rcode(first!!)}, ${Packets.answers(first)} answers",
            unbound.aV4, Packets.lastA(first),
        )
        // The same name again: the engine's cache answers.
        assertNotNull("second answer", queryThroughTunnel(unbound.aName, 0x2002))

        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        val texts = { activity.window.decorView.all(TextView::class.java).filter { it.isShown }.map { it.text.toString() } }
        awaitUntil("counters show two queries") { texts().any { it.startsWith("Queries: 2 (0 failed)") } }
        val counters = texts().first { it.startsWith("Queries:") }
        assertTrue(counters, counters.contains("Cache hit rate: 50 %"))
        assertTrue(counters, Regex("TLS handshakes: [1-9]\\d* full").containsMatchIn(counters))
        assertTrue(counters, Regex("Average latency: \\S+").containsMatchIn(counters))
        assertTrue(texts().toString(), texts().any { it == "Validated: ${status.server.validatedServer} (authenticated)" })
        val log = texts().first { it.contains(unbound.aName.trimEnd('.')) }
        assertEquals("both queries logged: $log", 2, log.lines().count { it.contains(unbound.aName.trimEnd('.')) })
        ScreenshotTest.capture(activity, "main-on-counters")
    }

    /** Starts the service for the fixture's server as a custom server trusted through its CA file, named [name]. */
    private fun startWithCa(name: String): MainActivity {
        SettingsRepository(app).save(
            Settings(
                server = ServerChoice.Custom,
                custom = CustomServerInput(hostname = name, addresses = unbound.dot, caPem = unbound.caPem),
                mode = Mode.STRICT,
            ),
        )
        running = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { it.awaitRunning() }
        return Robolectric.buildActivity(MainActivity::class.java).setup().get()
    }

    private fun MainActivity.shownTexts() =
        window.decorView.all(TextView::class.java).filter { it.isShown }.map { it.text.toString() }

    @Test
    fun `a custom server trusted through its CA certificate validates and answers`() {
        val activity = startWithCa(unbound.dotName)
        val answer = queryThroughTunnel(unbound.aName, 0x2101)
        assertNotNull("an answer through the CA-trusted server", answer)
        assertEquals(unbound.aV4, Packets.lastA(answer!!))
        awaitUntil("the screen shows the server authenticated") {
            activity.shownTexts().any { it == "Validated: ${status.server.validatedServer} (authenticated)" }
        }
        assertTrue("no advice while validated", activity.shownTexts().none { it.startsWith("Check ") || it.startsWith("Update ") })
    }

    @Test
    fun `a name the certificate does not list says so and says to check the name`() {
        val activity = startWithCa("wrong.test")
        val answer = queryThroughTunnel(unbound.aName, 0x2102, timeoutMillis = 8_000)
        assertTrue(
            "strict mode must not answer from a server whose certificate names another host",
            answer == null || Packets.answers(answer) == 0,
        )
        awaitUntil("the status screen gives the reason") {
            activity.shownTexts().any { it.startsWith("Not validated: ") && it.contains("not valid for wrong.test") }
        }
        assertEquals("certificate_name_mismatch", status.server.lastFailureKind)
        val advice = activity.shownTexts().single { it.startsWith("Check the server name") }
        assertTrue(advice, advice.contains("Settings"))
        ScreenshotTest.capture(activity, "main-not-validated")
    }

    @Test
    fun `a pin that does not match says to update the pin`() {
        SettingsRepository(app).save(
            Settings(
                server = ServerChoice.Custom,
                custom = CustomServerInput(hostname = unbound.dotName, addresses = unbound.dot, pins = PIN_OF_NOTHING),
                mode = Mode.STRICT,
            ),
        )
        running = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { it.awaitRunning() }
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        queryThroughTunnel(unbound.aName, 0x2103, timeoutMillis = 8_000)
        awaitUntil("the status screen says to update the pin") {
            activity.shownTexts().any { it.startsWith("Update the pin") }
        }
        assertEquals("pin_mismatch", status.server.lastFailureKind)
        val reason = activity.shownTexts().single { it.startsWith("Not validated: ") }
        assertTrue("the reason names the pin that was expected: $reason", reason.contains(PIN_OF_NOTHING))
    }

    private val unbound get() = fixture.server

    companion object {
        @ClassRule @JvmField val fixture = UnboundPerClass()

        /** A well-formed pin no key has (SHA-256 of nothing). */
        const val PIN_OF_NOTHING = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    }
}
