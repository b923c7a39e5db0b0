package app.dotcore.logic

import app.dotcore.ffi.AnswerSource
import app.dotcore.ffi.CustomServer
import app.dotcore.ffi.DotEngine
import app.dotcore.ffi.EngineConfig
import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.HostDelegate
import app.dotcore.ffi.Mode
import app.dotcore.ffi.Upstream
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * The hub with a real engine (libdotcore_ffi through JNA) whose delegate
 * forwards to it, as DotVpnService's does.
 */
class StatusHubTest {
    /** A server on loopback where nothing listens: every query fails, fast, locally. */
    private fun unreachable(queryLog: Boolean) = EngineConfig(
        upstream = Upstream.Custom(listOf(CustomServer(name = "dot.test", addresses = listOf("127.0.0.1:9")))),
        mode = Mode.STRICT,
        queryLog = queryLog,
    )

    private fun delegateFor(hub: StatusHub, protects: MutableList<Int>) = object : HostDelegate {
        override fun protectSocket(fd: Int): Boolean {
            synchronized(protects) { protects += fd }
            return true
        }

        override fun onEvent(event: EngineEvent) = hub.onEngineEvent(event)
    }

    @Test
    fun countersAndFailuresOfARealEngineReachTheStatus() {
        val hub = StatusHub(clock = { 42 })
        val protects = mutableListOf<Int>()
        DotEngine(unreachable(queryLog = true), delegateFor(hub, protects)).use { engine ->
            hub.engineStarted("dot.test", Mode.STRICT, queryLog = true) { engine.stats() }
            val answer = runBlocking { engine.lookup("a.test", "A") }
            assertEquals("SERVFAIL", answer.rcode)

            val status = hub.refreshStats()
            assertEquals(1, status.stats.queries)
            assertEquals(1, status.stats.failures)
            assertEquals(0, status.stats.answered)
            assertEquals(1, status.engineGeneration)
            assertTrue(synchronized(protects) { protects.isNotEmpty() }, "the engine asked to protect its socket")
            assertNotNull(status.server.lastFailure, "ServerFailed reached the hub: $status")

            val log = hub.queryLog.snapshot()
            assertEquals(1, log.size)
            assertEquals("a.test.", log[0].name)
            assertEquals("A", log[0].typeName)
            assertEquals("SERVFAIL", log[0].rcodeName)
            assertEquals(AnswerSource.FAILED, log[0].source)
            assertEquals(42, log[0].timeMillis)

            engine.stop()
            hub.engineStopped(engine.stats())
        }
        // The engine is freed; its final counters stay.
        assertEquals(1, hub.refreshStats().stats.queries)
    }

    @Test
    fun queriesAreNotLoggedWhenTheLogIsOff() {
        val hub = StatusHub()
        DotEngine(unreachable(queryLog = false), delegateFor(hub, mutableListOf())).use { engine ->
            hub.engineStarted("dot.test", Mode.STRICT, queryLog = false) { engine.stats() }
            runBlocking { engine.lookup("b.test", "AAAA") }
            // Even if an engine sent query events, the hub would drop them.
            hub.onEngineEvent(EngineEvent.Query("c.test.", 1, 0, AnswerSource.TLS, 5))
            assertEquals(0, hub.queryLog.size)
            engine.stop()
        }
    }

    @Test
    fun generationsCountTunnelsAndEngines() {
        val hub = StatusHub()
        hub.tunnelEstablished()
        hub.engineStarted("a", Mode.STRICT, false) { error("not called") }
        hub.engineStopped(null)
        hub.engineStarted("b", Mode.OPPORTUNISTIC, false) { error("not called") }
        val s = hub.status.value
        assertEquals(1, s.tunnelGeneration)
        assertEquals(2, s.engineGeneration)
        assertEquals("b", s.serverLabel)
        assertEquals(Mode.OPPORTUNISTIC, s.mode)
        hub.serviceState(ServiceState.Running(Settings()))
        hub.setWarnings(listOf(Warning.LOCKDOWN))
        assertTrue(hub.status.value.service.isOn)
        assertEquals(listOf(Warning.LOCKDOWN), hub.status.value.warnings)
    }
}
