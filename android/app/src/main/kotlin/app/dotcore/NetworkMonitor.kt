package app.dotcore

import android.net.ConnectivityManager
import android.net.LinkProperties
import android.net.Network
import android.net.NetworkCapabilities
import android.os.Build
import android.os.Handler
import app.dotcore.logic.NetworkSnapshot

/**
 * Follows the default network of this app. The app excludes itself from
 * its own tunnel, so that is the device's underlying network (Wi-Fi,
 * cellular), with that network's DNS servers and Private DNS state.
 *
 * Callbacks run on [handler]'s thread. A snapshot is reported once both the
 * capabilities and the link properties of the current network are known,
 * and again on every change of either; the service debounces them.
 */
class NetworkMonitor(
    private val cm: ConnectivityManager,
    private val handler: Handler,
    private val listener: Listener,
) {
    interface Listener {
        fun onNetwork(network: Network, snapshot: NetworkSnapshot)
        fun onNetworkLost(network: Network)
    }

    private var network: Network? = null
    private var caps: NetworkCapabilities? = null
    private var link: LinkProperties? = null

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) {
            select(network)
        }

        override fun onCapabilitiesChanged(network: Network, networkCapabilities: NetworkCapabilities) {
            select(network)
            caps = networkCapabilities
            publish()
        }

        override fun onLinkPropertiesChanged(network: Network, linkProperties: LinkProperties) {
            select(network)
            link = linkProperties
            publish()
        }

        override fun onLost(network: Network) {
            if (network == this@NetworkMonitor.network) {
                this@NetworkMonitor.network = null
                caps = null
                link = null
            }
            listener.onNetworkLost(network)
        }
    }

    private fun select(n: Network) {
        if (n != network) {
            network = n
            caps = null
            link = null
        }
    }

    private fun publish() {
        val n = network ?: return
        val c = caps ?: return
        val l = link ?: return
        listener.onNetwork(n, snapshot(n, c, l))
    }

    fun start() {
        cm.registerDefaultNetworkCallback(callback, handler)
    }

    /**
     * The default network read synchronously, for an engine that starts
     * before the first callback has arrived.
     */
    fun currentSnapshot(): Pair<Network, NetworkSnapshot>? {
        val n = cm.activeNetwork ?: return null
        val c = cm.getNetworkCapabilities(n) ?: return null
        val l = cm.getLinkProperties(n) ?: return null
        return n to snapshot(n, c, l)
    }

    fun stop() {
        try {
            cm.unregisterNetworkCallback(callback)
        } catch (e: IllegalArgumentException) {
            // not registered
        }
    }

    companion object {
        fun snapshot(network: Network, caps: NetworkCapabilities, link: LinkProperties): NetworkSnapshot {
            // Private DNS state exists from API 28; the server name is non-null
            // only in strict ("Private DNS provider host name") mode.
            val (privateDnsActive, privateDnsName) = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
                link.isPrivateDnsActive to link.privateDnsServerName
            } else {
                false to null
            }
            return NetworkSnapshot(
                handle = network.networkHandle,
                dnsServers = link.dnsServers.mapNotNull { it.hostAddress },
                metered = !caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED),
                validated = caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED),
                privateDnsActive = privateDnsActive,
                privateDnsServerName = privateDnsName,
            )
        }
    }
}
