package app.dotcore.logic

import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.EngineStats
import app.dotcore.ffi.Mode
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update

/**
 * The one place where the service publishes and the screens read the
 * app's state: the service state, the engine's events, counters, warnings
 * and the query log. Thread-safe; the engine's thread calls [onEngineEvent].
 * One instance per process ([DEFAULT]); tests make their own.
 */
class StatusHub(private val clock: () -> Long = System::currentTimeMillis) {
    private val state = MutableStateFlow(AppStatus())
    val status: StateFlow<AppStatus> = state.asStateFlow()

    val queryLog = QueryLog()

    @Volatile
    private var queryLogEnabled = false

    @Volatile
    private var statsSource: (() -> EngineStats)? = null

    fun serviceState(s: ServiceState) = state.update { it.copy(service = s) }

    /** A new engine runs for [serverLabel] in [mode]; [stats] reads its counters. */
    fun engineStarted(serverLabel: String, mode: Mode, queryLog: Boolean, stats: () -> EngineStats) {
        queryLogEnabled = queryLog
        statsSource = stats
        state.update {
            it.copy(
                serverLabel = serverLabel,
                mode = mode,
                server = ServerStatus(),
                stats = StatsSummary.EMPTY,
                engineGeneration = it.engineGeneration + 1,
            )
        }
    }

    /** The engine stopped; its final counters stay on screen. */
    fun engineStopped(finalStats: EngineStats?) {
        statsSource = null
        if (finalStats != null) state.update { it.copy(stats = StatsSummary.of(finalStats)) }
    }

    fun tunnelEstablished() = state.update { it.copy(tunnelGeneration = it.tunnelGeneration + 1) }

    fun onEngineEvent(event: EngineEvent) {
        if (event is EngineEvent.Query) {
            if (queryLogEnabled) {
                queryLog.add(
                    QueryLogEntry(clock(), event.name, event.qtype, event.rcode, event.source, event.latencyMicros),
                )
            }
            return
        }
        state.update { it.copy(server = it.server.on(event)) }
    }

    fun setWarnings(warnings: List<Warning>) = state.update { it.copy(warnings = warnings) }

    /** Reads the running engine's counters into the status; returns the new status. */
    fun refreshStats(): AppStatus {
        val source = statsSource
        if (source != null) {
            val summary = try {
                StatsSummary.of(source())
            } catch (e: RuntimeException) {
                null // engine freed between the read of statsSource and the call
            }
            if (summary != null) state.update { it.copy(stats = summary) }
        }
        return state.value
    }

    fun clearQueryLog() = queryLog.clear()

    companion object {
        /** The process's hub, shared by the service, the screens and the tile. */
        val DEFAULT = StatusHub()
    }
}
