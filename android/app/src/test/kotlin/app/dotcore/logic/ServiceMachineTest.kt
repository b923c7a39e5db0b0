package app.dotcore.logic

import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.Mode
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class ServiceMachineTest {
    private val cloudflare = Settings(server = ServerChoice.Provider("cloudflare"))

    /** A machine that has started with [s] (start effects succeeded). */
    private fun running(s: Settings = cloudflare): ServiceMachine {
        val m = ServiceMachine()
        val t = m.on(ServiceEvent.Start(s))
        assertEquals(ServiceEvent.Started, t.then)
        m.on(ServiceEvent.Started)
        assertEquals(ServiceState.Running(s), m.state)
        return m
    }

    @Test
    fun startBuildsTheTunnelBeforeTheEngineAndReportsStarted() {
        val m = ServiceMachine()
        val t = m.on(ServiceEvent.Start(cloudflare))
        assertEquals(ServiceState.Starting(cloudflare), t.next)
        assertEquals(
            listOf(Effect.EnterForeground, Effect.EstablishTunnel(cloudflare), Effect.StartEngine(cloudflare)),
            t.effects,
        )
        assertTrue(m.state.isOn)
        val started = m.on(ServiceEvent.Started)
        assertEquals(ServiceState.Running(cloudflare), started.next)
        assertEquals(listOf(Effect.RefreshNotification), started.effects)
    }

    @Test
    fun aFailedStartTearsDownAndKeepsTheReason() {
        val m = ServiceMachine()
        m.on(ServiceEvent.Start(cloudflare))
        val t = m.on(ServiceEvent.Failed("no VPN permission"))
        assertEquals(ServiceState.Stopped("no VPN permission"), m.state)
        assertEquals(
            listOf(Effect.StopEngine, Effect.CloseTunnel, Effect.LeaveForeground("no VPN permission")),
            t.effects,
        )
        assertFalse(m.state.isOn)
        // And the next start starts from scratch.
        assertEquals(ServiceState.Starting(cloudflare), m.on(ServiceEvent.Start(cloudflare)).next)
    }

    @Test
    fun stopAndRevokeTearDownInOrder() {
        val stopped = running().on(ServiceEvent.Stop)
        assertEquals(ServiceState.Stopped(null), stopped.next)
        assertEquals(listOf(Effect.StopEngine, Effect.CloseTunnel, Effect.LeaveForeground(null)), stopped.effects)

        val revoked = running().on(ServiceEvent.Revoked)
        assertEquals(ServiceState.Stopped(ServiceMachine.REVOKED), revoked.next)
        assertEquals(Effect.LeaveForeground(ServiceMachine.REVOKED), revoked.effects.last())
    }

    @Test
    fun aProviderChangeRestartsOnlyTheEngine() {
        val m = running()
        val quad9 = cloudflare.copy(server = ServerChoice.Provider("quad9"))
        val t = m.on(ServiceEvent.SettingsChanged(quad9))
        assertEquals(ServiceState.Running(quad9), m.state)
        assertEquals(listOf(Effect.StopEngine, Effect.StartEngine(quad9), Effect.RefreshNotification), t.effects)
        assertFalse(t.effects.any { it is Effect.EstablishTunnel || it == Effect.CloseTunnel })
    }

    @Test
    fun excludedAppsRebuildTheTunnel() {
        val m = running()
        val s = cloudflare.copy(excludedApps = setOf("com.example.game"))
        val t = m.on(ServiceEvent.SettingsChanged(s))
        assertEquals(
            listOf(Effect.StopEngine, Effect.EstablishTunnel(s), Effect.StartEngine(s), Effect.RefreshNotification),
            t.effects,
        )
    }

    @Test
    fun changesTheEngineDoesNotSeeRestartNothing() {
        val m = running()
        val s = cloudflare.copy(startOnBoot = true)
        val t = m.on(ServiceEvent.SettingsChanged(s))
        assertEquals(ServiceState.Running(s), m.state)
        assertTrue(t.effects.isEmpty())
        // A repeated start (always-on and the boot receiver both) is a no-op.
        assertTrue(m.on(ServiceEvent.Start(s)).effects.isEmpty())
    }

    @Test
    fun switchingTheQueryLogOffClearsIt() {
        val m = running(cloudflare.copy(queryLog = true))
        val t = m.on(ServiceEvent.SettingsChanged(cloudflare.copy(queryLog = false)))
        assertTrue(Effect.ClearQueryLog in t.effects)
        assertTrue(t.effects.indexOf(Effect.ClearQueryLog) < t.effects.indexOfFirst { it is Effect.StartEngine })
        val on = running().on(ServiceEvent.SettingsChanged(cloudflare.copy(queryLog = true)))
        assertFalse(Effect.ClearQueryLog in on.effects)
    }

    @Test
    fun anEngineThatFailsToRestartStopsTheService() {
        val m = running()
        m.on(ServiceEvent.SettingsChanged(cloudflare.copy(mode = Mode.OPPORTUNISTIC)))
        val t = m.on(ServiceEvent.Failed("config_id: missing"))
        assertEquals(ServiceState.Stopped("config_id: missing"), t.next)
        assertEquals(Effect.LeaveForeground("config_id: missing"), t.effects.last())
    }

    @Test
    fun aStoppedServiceLeavesOnAnythingButStart() {
        for (e in listOf(ServiceEvent.Stop, ServiceEvent.Revoked, ServiceEvent.SettingsChanged(cloudflare))) {
            val t = ServiceMachine().on(e)
            assertEquals(ServiceState.Stopped(null), t.next, "$e")
            assertEquals(listOf(Effect.LeaveForeground(null)), t.effects, "$e")
        }
        for (e in listOf(ServiceEvent.Started, ServiceEvent.Failed("late"))) {
            val t = ServiceMachine().on(e)
            assertEquals(ServiceState.Stopped(null), t.next)
            assertTrue(t.effects.isEmpty())
            assertNull(t.then)
        }
    }

    @Test
    fun staleEventsWhileStartingAreIgnored() {
        val m = ServiceMachine()
        m.on(ServiceEvent.Start(cloudflare))
        val t = m.on(ServiceEvent.SettingsChanged(cloudflare.copy(mode = Mode.OPPORTUNISTIC)))
        assertEquals(ServiceState.Starting(cloudflare), t.next)
        assertTrue(t.effects.isEmpty())
    }

    @Test
    fun aTunnelThatWentAwayStopsARunningServiceWithItsReason() {
        val m = running()
        val event = ServiceEvent.fromEngine(EngineEvent.TunClosed("the TUN interface was deleted (EBADFD)"))
        assertTrue(event is ServiceEvent.Failed)
        val t = m.on(event!!)
        val stopped = t.next as ServiceState.Stopped
        assertTrue(stopped.error!!.startsWith(ServiceEvent.TUNNEL_GONE), stopped.error)
        assertTrue(stopped.error!!.contains("EBADFD"), stopped.error)
        assertEquals(Effect.StopEngine, t.effects.first())
        // Other engine events leave the service alone.
        assertNull(ServiceEvent.fromEngine(EngineEvent.TlsRestored))
        assertNull(ServiceEvent.fromEngine(EngineEvent.Stopped))
    }

    @Test
    fun aRecheckRereadsThePlatformOnlyWhileRunning() {
        val m = running()
        val t = m.on(ServiceEvent.Recheck)
        assertEquals(ServiceState.Running(cloudflare), t.next)
        assertEquals(listOf(Effect.RecheckPlatform), t.effects)
        // Starting reads it when it builds the tunnel; a stopped service was
        // created by the recheck intent itself and leaves.
        val starting = ServiceMachine().also { it.on(ServiceEvent.Start(cloudflare)) }
        assertTrue(starting.on(ServiceEvent.Recheck).effects.isEmpty())
        assertEquals(listOf(Effect.LeaveForeground(null)), ServiceMachine().on(ServiceEvent.Recheck).effects)
    }
}
