package app.dotcore.ffi.test

import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.HostDelegate
import java.util.concurrent.CopyOnWriteArrayList
import org.junit.jupiter.api.Assertions.fail

/**
 * A [HostDelegate] the way a VpnService would write one, recording what the
 * engine asked of it. [protect] decides what `protectSocket` answers (it may
 * throw); [throwOnEvent] makes every `onEvent` throw after recording.
 */
class RecordingDelegate(
    private val protect: (Int) -> Boolean = { true },
    private val throwOnEvent: Boolean = false,
) : HostDelegate {
    /** Every descriptor `protectSocket` was called with, in order. */
    val protectedFds = CopyOnWriteArrayList<Int>()
    /** getsockopt(SO_TYPE) of each, taken during the call (-1: not a socket). */
    val socketTypes = CopyOnWriteArrayList<Int>()
    val events = CopyOnWriteArrayList<EngineEvent>()

    override fun protectSocket(fd: Int): Boolean {
        protectedFds += fd
        socketTypes += LibC.socketType(fd)
        return protect(fd)
    }

    override fun onEvent(event: EngineEvent) {
        events += event
        if (throwOnEvent) throw IllegalStateException("onEvent failure (expected by the test)")
    }

    inline fun <reified T : EngineEvent> eventsOf(): List<T> = events.filterIsInstance<T>()

    /** Waits (bounded) for an event matching [predicate] and returns it. */
    inline fun <reified T : EngineEvent> awaitEvent(
        timeoutMs: Long = 5_000,
        crossinline predicate: (T) -> Boolean = { true },
    ): T {
        var found: T? = null
        eventually(timeoutMs, "a ${T::class.simpleName} event (got ${events.toList()})") {
            found = events.filterIsInstance<T>().firstOrNull { predicate(it) }
            found != null
        }
        return found!!
    }
}

/** Polls [condition] every 20 ms for at most [timeoutMs]; fails naming [what]. */
fun eventually(timeoutMs: Long = 5_000, what: String, condition: () -> Boolean) {
    val deadline = System.nanoTime() + timeoutMs * 1_000_000
    while (!condition()) {
        if (System.nanoTime() > deadline) fail<Unit>("timed out after $timeoutMs ms waiting for $what")
        Thread.sleep(20)
    }
}
