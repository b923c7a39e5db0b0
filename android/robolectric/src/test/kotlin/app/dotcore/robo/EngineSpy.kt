package app.dotcore.robo

import app.dotcore.ffi.DotEngine
import app.dotcore.ffi.PowerState
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.annotation.RealObject
import org.robolectric.util.reflector.Direct
import org.robolectric.util.reflector.ForType
import org.robolectric.util.reflector.Reflector.reflector
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

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
        // The service's first call on every engine it starts.
        synchronized(log) { engines += real }
        record(Call.Power(state))
        reflector(EngineCalls::class.java, real).setPowerState(state)
    }

    @Implementation
    fun stop() {
        record(Call.Stop)
        stopGate?.let { check(it.await(30, TimeUnit.SECONDS)) { "stopGate never opened" } }
        reflector(EngineCalls::class.java, real).stop()
        // The real engine's own word, read before the service frees it.
        record(Call.Stopped(running = real.isRunning()))
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

        /** The real stop() returned; [running] is what the engine then said of itself. */
        data class Stopped(val running: Boolean) : Call
    }

    companion object {
        private val log = mutableListOf<Call>()
        private val engines = mutableListOf<DotEngine>()

        /** While set, stop() waits for it before stopping the real engine: a slow stop, at will. */
        @Volatile var stopGate: CountDownLatch? = null

        /** The real engines the service started, oldest first (freed once stopped: do not call them then). */
        val started: List<DotEngine> get() = synchronized(log) { engines.toList() }

        fun stopsReturned() = calls.filterIsInstance<Call.Stopped>()

        private fun record(c: Call) = synchronized(log) { log += c }

        val calls: List<Call> get() = synchronized(log) { log.toList() }

        fun clear() = synchronized(log) {
            log.clear()
            engines.clear()
            stopGate = null
        }

        fun networks() = calls.filterIsInstance<Call.Network>().map { it.dnsServers }

        fun powers() = calls.filterIsInstance<Call.Power>().map { it.state }
    }
}
