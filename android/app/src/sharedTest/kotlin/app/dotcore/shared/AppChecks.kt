package app.dotcore.shared

import app.dotcore.ffi.Mode
import app.dotcore.logic.AppStatus
import app.dotcore.logic.ServiceState
import app.dotcore.logic.Settings
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue

/**
 * What a check needs from wherever the app runs: a device or emulator
 * (`app/src/androidTest`, the real system, public servers) or the JVM
 * (`android/robolectric`, Robolectric and the local Unbound server). Both
 * suites compile this source set, so a check written once runs in both.
 */
interface AppDriver {
    /** The process's status, as the screens read it. */
    val status: AppStatus

    /** Saves [settings] and starts the VPN with them; returns once it runs. */
    fun start(settings: Settings)

    /** Saves [settings] and has the running service apply them. */
    fun apply(settings: Settings)

    /** Waits, at most [timeoutMillis], until [condition] holds, letting the app run meanwhile. */
    fun waitFor(what: String, timeoutMillis: Long = 20_000, condition: () -> Boolean)
}

/** Checks both suites run, each with its own servers. */
object AppChecks {
    /**
     * Starts with [first], then applies [other], which differs in what the
     * engine sees (server, mode, pins) but not in the excluded apps: a new
     * engine for [otherLabel] runs on the same tunnel.
     */
    fun engineChangeKeepsTheTunnel(d: AppDriver, first: Settings, other: Settings, otherLabel: String) {
        require(first.excludedApps == other.excludedApps) { "the excluded apps are part of the tunnel" }
        d.start(first)
        val tunnel = d.status.tunnelGeneration
        val engine = d.status.engineGeneration
        d.apply(other)
        d.waitFor("a new engine for $otherLabel") {
            val s = d.status
            s.engineGeneration == engine + 1 && s.serverLabel == otherLabel && s.service is ServiceState.Running
        }
        assertEquals("same tunnel", tunnel, d.status.tunnelGeneration)
        assertEquals(other.mode, d.status.mode)
    }

    /** On a running service, applies [withExclusions] (other excluded apps): the tunnel is rebuilt. */
    fun excludedAppsRebuildTheTunnel(d: AppDriver, withExclusions: Settings) {
        val tunnel = d.status.tunnelGeneration
        d.apply(withExclusions)
        d.waitFor("a new tunnel") { d.status.tunnelGeneration == tunnel + 1 }
        d.waitFor("running again") { d.status.service is ServiceState.Running }
    }

    /**
     * Strict mode with no server it can authenticate fails closed: a
     * failure is reported, no server counts as validated, and nothing went
     * out in clear text.
     */
    fun assertFailedClosed(d: AppDriver) {
        d.waitFor("the failure is reported") { d.status.server.lastFailure != null }
        val s = d.status
        assertEquals(Mode.STRICT, s.mode)
        assertNotNull(s.server.lastFailure)
        assertNull("no server validated", s.server.validatedServer)
        assertTrue("not validated", !s.server.validated)
        assertEquals("never clear text in strict mode", 0L, s.stats.cleartextQueries)
    }
}
