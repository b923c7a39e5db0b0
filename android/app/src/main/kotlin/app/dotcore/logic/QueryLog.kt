package app.dotcore.logic

import app.dotcore.ffi.AnswerSource

/** One answered query, as the status screen lists it. */
data class QueryLogEntry(
    val timeMillis: Long,
    val name: String,
    val qtype: Int,
    val rcode: Int,
    val source: AnswerSource,
    val latencyMicros: Long,
) {
    val typeName: String get() = DnsNames.type(qtype)
    val rcodeName: String get() = DnsNames.rcode(rcode)
}

/** Mnemonics of the DNS numbers the log shows. */
object DnsNames {
    private val types = mapOf(
        1 to "A", 2 to "NS", 5 to "CNAME", 6 to "SOA", 12 to "PTR", 15 to "MX",
        16 to "TXT", 28 to "AAAA", 33 to "SRV", 35 to "NAPTR", 43 to "DS", 48 to "DNSKEY",
        64 to "SVCB", 65 to "HTTPS", 255 to "ANY",
    )
    private val rcodes = mapOf(
        0 to "NOERROR", 1 to "FORMERR", 2 to "SERVFAIL", 3 to "NXDOMAIN", 4 to "NOTIMP", 5 to "REFUSED",
    )

    fun type(n: Int): String = types[n] ?: "TYPE$n"
    fun rcode(n: Int): String = rcodes[n] ?: "RCODE$n"
}

/**
 * The recent queries, in memory only and bounded: the oldest entry goes
 * when a new one arrives at [capacity]. Thread-safe (the engine's thread
 * adds, the UI thread reads).
 */
class QueryLog(val capacity: Int = DEFAULT_CAPACITY) {
    init {
        require(capacity > 0) { "capacity must be positive" }
    }

    private val ring = arrayOfNulls<QueryLogEntry>(capacity)
    private var next = 0
    private var count = 0

    @Synchronized
    fun add(entry: QueryLogEntry) {
        ring[next] = entry
        next = (next + 1) % capacity
        if (count < capacity) count++
    }

    val size: Int
        @Synchronized get() = count

    /** The entries, newest first. */
    @Synchronized
    fun snapshot(): List<QueryLogEntry> = List(count) { i ->
        ring[(next - 1 - i + capacity) % capacity]!!
    }

    @Synchronized
    fun clear() {
        ring.fill(null)
        next = 0
        count = 0
    }

    companion object {
        const val DEFAULT_CAPACITY = 200
    }
}
