package app.dotcore.logic

import app.dotcore.ffi.EngineEvent

/** Where the VPN service is. */
sealed interface ServiceState {
    /** Not running; [error] says why it stopped when it did not stop by request. */
    data class Stopped(val error: String? = null) : ServiceState

    /** Building the tunnel and the engine for [settings]. */
    data class Starting(val settings: Settings) : ServiceState

    /** Tunnel up, engine answering, with [settings]. */
    data class Running(val settings: Settings) : ServiceState

    /** Whether the user sees the service as on (switch, tile). */
    val isOn: Boolean get() = this !is Stopped
}

/** What happens to the service. */
sealed interface ServiceEvent {
    /** The user, the tile, boot or always-on asked for the service. */
    data class Start(val settings: Settings) : ServiceEvent

    /** The user asked it to stop. */
    data object Stop : ServiceEvent

    /** Android revoked the VPN (another VPN app started, or the user revoked it). */
    data object Revoked : ServiceEvent

    /** The settings were saved while the service may be running. */
    data class SettingsChanged(val settings: Settings) : ServiceEvent

    /**
     * Re-read the platform settings the warnings depend on (always-on
     * lockdown): the status screen came to the front, or Android sent the
     * always-on start again.
     */
    data object Recheck : ServiceEvent

    /** Internal: every effect of a start succeeded. */
    data object Started : ServiceEvent

    /** Internal: an effect failed (no VPN permission, engine rejected its configuration, ...). */
    data class Failed(val reason: String) : ServiceEvent

    companion object {
        /**
         * The service event an engine event calls for, if any: a tunnel that
         * went away under a running engine leaves the VPN answering nothing,
         * so the service stops and says why instead of showing itself as on.
         * When Android revokes the VPN this may arrive before `onRevoke`,
         * hence the message names the likely causes.
         */
        fun fromEngine(event: EngineEvent): ServiceEvent? = when (event) {
            is EngineEvent.TunClosed -> Failed("$TUNNEL_GONE (${event.reason})")
            else -> null
        }

        const val TUNNEL_GONE = "The VPN tunnel was closed, most likely by Android or by another VPN app"
    }
}

/** What the service must do; executed in order by the Android side. */
sealed interface Effect {
    /** Show the ongoing notification (startForeground). */
    data object EnterForeground : Effect

    /** Build the tunnel for [settings]; an existing one is replaced. */
    data class EstablishTunnel(val settings: Settings) : Effect

    /** Create an engine for [settings] and hand it the tunnel. */
    data class StartEngine(val settings: Settings) : Effect

    /** Stop and free the engine (the tunnel stays). */
    data object StopEngine : Effect

    /** Close the tunnel. */
    data object CloseTunnel : Effect

    /** Drop the query log (it was switched off). */
    data object ClearQueryLog : Effect

    /** Redraw the notification (provider or mode changed). */
    data object RefreshNotification : Effect

    /** Read the platform settings behind the warnings again and publish them. */
    data object RecheckPlatform : Effect

    /** Leave the foreground and stop the service; tell the user [error] if any. */
    data class LeaveForeground(val error: String?) : Effect
}

/**
 * A transition: the next state, the effects to run in order, and the event
 * to feed back when all of them succeeded ([then]). When an effect fails
 * the executor feeds [ServiceEvent.Failed] instead and skips the rest;
 * an effect that throws has failed too.
 */
data class Transition(
    val next: ServiceState,
    val effects: List<Effect> = emptyList(),
    val then: ServiceEvent? = null,
)

/**
 * The VPN service's life cycle as a pure function, so that every path
 * (start, failure, settings change, revoke) is decided here and tested on a
 * JVM; DotVpnService only executes the effects.
 *
 * Settings changes on a running service restart as little as possible:
 * nothing when the engine would get the same configuration, a new engine on
 * the same tunnel for provider, mode or query-log changes (the tunnel
 * descriptor is kept; each engine gets a duplicate), and a new tunnel only
 * when the excluded apps changed.
 */
class ServiceMachine(initial: ServiceState = ServiceState.Stopped()) {
    var state: ServiceState = initial
        private set

    /** Applies [event]; returns what to do. */
    fun on(event: ServiceEvent): Transition {
        val t = transition(state, event)
        state = t.next
        return t
    }

    companion object {
        private val teardown = listOf(Effect.StopEngine, Effect.CloseTunnel)

        fun transition(state: ServiceState, event: ServiceEvent): Transition = when (state) {
            is ServiceState.Stopped -> when (event) {
                is ServiceEvent.Start -> Transition(
                    ServiceState.Starting(event.settings),
                    listOf(
                        Effect.EnterForeground,
                        Effect.EstablishTunnel(event.settings),
                        Effect.StartEngine(event.settings),
                    ),
                    then = ServiceEvent.Started,
                )
                // A stop or a settings change for a service that is not
                // running (the intent itself created the service): leave at
                // once so it does not linger.
                ServiceEvent.Stop, ServiceEvent.Revoked, is ServiceEvent.SettingsChanged, ServiceEvent.Recheck ->
                    Transition(state, listOf(Effect.LeaveForeground(null)))
                // Stale internal events.
                ServiceEvent.Started, is ServiceEvent.Failed -> Transition(state)
            }

            is ServiceState.Starting -> when (event) {
                ServiceEvent.Started -> Transition(ServiceState.Running(state.settings), listOf(Effect.RefreshNotification))
                is ServiceEvent.Failed -> fail(event.reason)
                ServiceEvent.Stop -> stop(null)
                ServiceEvent.Revoked -> stop(REVOKED)
                // The executor feeds Started or Failed right after the start
                // effects, before any other event; anything else is stale.
                // (Establishing the tunnel reads the platform settings too.)
                is ServiceEvent.Start, is ServiceEvent.SettingsChanged, ServiceEvent.Recheck -> Transition(state)
            }

            is ServiceState.Running -> when (event) {
                is ServiceEvent.Start -> apply(state.settings, event.settings)
                is ServiceEvent.SettingsChanged -> apply(state.settings, event.settings)
                is ServiceEvent.Failed -> fail(event.reason)
                ServiceEvent.Stop -> stop(null)
                ServiceEvent.Revoked -> stop(REVOKED)
                ServiceEvent.Recheck -> Transition(state, listOf(Effect.RecheckPlatform))
                ServiceEvent.Started -> Transition(state)
            }
        }

        private fun apply(old: Settings, new: Settings): Transition {
            val clearLog = if (old.queryLog && !new.queryLog) listOf(Effect.ClearQueryLog) else emptyList()
            return when (EngineConfigs.applyPlan(old, new)) {
                EngineConfigs.ApplyPlan.NOTHING -> Transition(ServiceState.Running(new))
                EngineConfigs.ApplyPlan.RESTART_ENGINE -> Transition(
                    ServiceState.Running(new),
                    listOf(Effect.StopEngine) + clearLog + listOf(Effect.StartEngine(new), Effect.RefreshNotification),
                )
                EngineConfigs.ApplyPlan.REBUILD_TUNNEL -> Transition(
                    ServiceState.Running(new),
                    listOf(Effect.StopEngine) + clearLog +
                        listOf(Effect.EstablishTunnel(new), Effect.StartEngine(new), Effect.RefreshNotification),
                )
            }
        }

        private fun stop(error: String?) =
            Transition(ServiceState.Stopped(error), teardown + Effect.LeaveForeground(error))

        private fun fail(reason: String) = stop(reason)

        const val REVOKED = "Another VPN app was turned on, or the VPN permission was revoked"
    }
}
