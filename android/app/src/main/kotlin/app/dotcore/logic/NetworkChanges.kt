package app.dotcore.logic

import app.dotcore.ffi.NetworkInfo
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch

/**
 * The device's default network as ConnectivityManager describes it:
 * [handle] is `Network.getNetworkHandle()`, [dnsServers] the
 * `LinkProperties.getDnsServers()` host addresses, [privateDnsServerName]
 * Android's own Private DNS host name when it is in strict ("hostname")
 * mode.
 */
data class NetworkSnapshot(
    val handle: Long,
    val dnsServers: List<String>,
    val metered: Boolean,
    val validated: Boolean,
    val privateDnsActive: Boolean = false,
    val privateDnsServerName: String? = null,
) {
    /** What the engine gets (`DotEngine.onNetworkChanged`). */
    fun toNetworkInfo(): NetworkInfo =
        NetworkInfo(dnsServers = DnsServers.usable(dnsServers), metered = metered, validated = validated)

    /**
     * Whether going from [previous] to this snapshot concerns the engine,
     * which drops its connections and cache on every change: a different
     * network, different DNS servers, or a network that has just passed
     * validation (a captive portal was signed in; connections tried before
     * that failed). Metered flips and lost validation are not worth it.
     */
    fun differsForEngine(previous: NetworkSnapshot?): Boolean =
        previous == null ||
            previous.handle != handle ||
            DnsServers.usable(previous.dnsServers) != DnsServers.usable(dnsServers) ||
            (!previous.validated && validated)
}

/** The network's resolvers in the form the core accepts. */
object DnsServers {
    /** fe80::/10. */
    private val linkLocal = Regex("^fe[89ab][0-9a-f]?:", RegexOption.IGNORE_CASE)

    /**
     * `InetAddress.getHostAddress()` writes IPv6 link-local servers with a
     * zone (`fe80::1%wlan0`), which the core cannot parse nor use (it does
     * not bind to interfaces): those are dropped. A zone on any other
     * address is removed. Blank entries and duplicates go too.
     */
    fun usable(raw: List<String>): List<String> = raw.asSequence()
        .map(String::trim)
        .filter(String::isNotEmpty)
        .mapNotNull { address ->
            val zone = address.indexOf('%')
            when {
                zone < 0 -> address
                linkLocal.containsMatchIn(address) -> null
                else -> address.substring(0, zone)
            }
        }
        .distinct()
        .toList()
}

/**
 * Coalesces bursts of network callbacks (a network switch produces
 * onAvailable, several onCapabilitiesChanged and onLinkPropertiesChanged
 * within a second) into one call of [deliver], [quietMillis] after the last
 * one, and only when the result [NetworkSnapshot.differsForEngine] from what
 * was delivered before.
 *
 * Called from any thread; [deliver] runs in [scope].
 */
class NetworkChangeDebouncer(
    private val scope: CoroutineScope,
    private val quietMillis: Long = DEFAULT_QUIET_MILLIS,
    private val deliver: (NetworkSnapshot) -> Unit,
) {
    private val lock = Any()
    private var pending: Job? = null
    private var latest: NetworkSnapshot? = null
    private var delivered: NetworkSnapshot? = null

    /** The newest snapshot submitted (null after [lost]). */
    val current: NetworkSnapshot? get() = synchronized(lock) { latest }

    fun submit(snapshot: NetworkSnapshot) {
        synchronized(lock) {
            latest = snapshot
            pending?.cancel()
            pending = scope.launch {
                delay(quietMillis)
                fire()
            }
        }
    }

    /**
     * The default network is gone. Nothing is delivered (the engine keeps
     * what it has until a network appears, which is then a change).
     */
    fun lost(handle: Long) {
        synchronized(lock) {
            if (latest?.handle != handle) return
            latest = null
            pending?.cancel()
            pending = null
        }
    }

    /**
     * The engine was (re)created with [snapshot]'s resolvers: it need not be
     * told again.
     */
    fun markDelivered(snapshot: NetworkSnapshot?) {
        synchronized(lock) { delivered = snapshot }
    }

    private fun fire() {
        val toDeliver = synchronized(lock) {
            val s = latest ?: return
            pending = null
            if (!s.differsForEngine(delivered)) return
            delivered = s
            s
        }
        deliver(toDeliver)
    }

    companion object {
        const val DEFAULT_QUIET_MILLIS = 1_000L
    }
}
