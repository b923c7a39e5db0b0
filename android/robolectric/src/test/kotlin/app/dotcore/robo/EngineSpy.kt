package app.dotcore.robo

import app.dotcore.ffi.DotEngine
import app.dotcore.ffi.PowerState
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.annotation.RealObject
import org.robolectric.util.reflector.Direct
import org.robolectric.util.reflector.ForType
import org.robolectric.util.reflector.Reflector.reflector

/**
 * Records what the service tells the real engine and passes every call on
 * to it unchanged, so the tests can check which network and power state
 * arrived without replacing the engine. Needs
 * `@Config(instrumentedPackages = ["app.dotcore.ffi.DotEngine"])`.
 */
@Implements(DotEngine::class)
class SpyDotEngine {
    @RealObject private lateinit var real: DotEngine

    @Implementation
    fun onNetworkChanged(info: app.dotcore.ffi.NetworkInfo) {
        record(Call.Network(info.dnsServers))
        reflector(EngineCalls::class.java, real).onNetworkChanged(info)
    }

    @Implementation
    fun setPowerState(state: PowerState) {
        record(Call.Power(state))
        reflector(EngineCalls::class.java, real).setPowerState(state)
    }

    @Implementation
    fun stop() {
        record(Call.Stop)
        reflector(EngineCalls::class.java, real).stop()
    }

    @ForType(DotEngine::class)
    interface EngineCalls {
        @Direct fun onNetworkChanged(info: app.dotcore.ffi.NetworkInfo)

        @Direct fun setPowerState(state: PowerState)

        @Direct fun stop()
    }

    sealed interface Call {
        data class Network(val dnsServers: List<String>) : Call
        data class Power(val state: PowerState) : Call
        data object Stop : Call
    }

    companion object {
        private val log = mutableListOf<Call>()

        private fun record(c: Call) = synchronized(log) { log += c }

        val calls: List<Call> get() = synchronized(log) { log.toList() }

        fun clear() = synchronized(log) { log.clear() }

        fun networks() = calls.filterIsInstance<Call.Network>().map { it.dnsServers }

        fun powers() = calls.filterIsInstance<Call.Power>().map { it.state }
    }
}
