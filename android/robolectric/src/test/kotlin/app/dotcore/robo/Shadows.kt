package app.dotcore.robo

import android.net.Network
import android.net.VpnService
import android.os.ParcelFileDescriptor
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.annotation.RealObject
import org.robolectric.shadows.ShadowVpnService
import org.robolectric.util.ReflectionHelpers
import java.io.FileDescriptor

/** One `VpnService.Builder`'s calls, as the system would receive them at establish(). */
data class TunnelSpec(
    val session: String?,
    val mtu: Int?,
    val addresses: List<Pair<String, Int>>,
    val routes: List<Pair<String, Int>>,
    val dnsServers: List<String>,
    val disallowed: List<String>,
    val families: Set<Int>,
    val underlying: List<Network>?,
    val blocking: Boolean?,
    val metered: Boolean?,
)

/**
 * VpnService.Builder has no Robolectric shadow and its real establish()
 * needs the system's VPN manager. This one records the calls and, at
 * establish(), hands the app one end of a SOCK_SEQPACKET socketpair as the
 * TUN descriptor; the test keeps the other end ([peerFd]) to play the
 * kernel and the apps.
 */
@Implements(VpnService.Builder::class)
class ShadowTunBuilder {
    @RealObject private lateinit var real: VpnService.Builder

    private var session: String? = null
    private var mtu: Int? = null
    private val addresses = mutableListOf<Pair<String, Int>>()
    private val routes = mutableListOf<Pair<String, Int>>()
    private val dns = mutableListOf<String>()
    private val disallowed = mutableListOf<String>()
    private val families = mutableSetOf<Int>()
    private var underlying: List<Network>? = null
    private var blocking: Boolean? = null
    private var metered: Boolean? = null

    @Implementation fun setSession(s: String): VpnService.Builder = real.also { session = s }

    @Implementation fun setMtu(m: Int): VpnService.Builder = real.also { mtu = m }

    @Implementation fun addAddress(a: String, prefix: Int): VpnService.Builder = real.also { addresses += a to prefix }

    @Implementation fun addRoute(a: String, prefix: Int): VpnService.Builder = real.also { routes += a to prefix }

    @Implementation fun addDnsServer(a: String): VpnService.Builder = real.also { dns += a }

    @Implementation fun allowFamily(f: Int): VpnService.Builder = real.also { families += f }

    @Implementation fun setBlocking(b: Boolean): VpnService.Builder = real.also { blocking = b }

    @Implementation fun setMetered(m: Boolean): VpnService.Builder = real.also { metered = m }

    @Implementation
    fun setUnderlyingNetworks(n: Array<Network>?): VpnService.Builder = real.also { underlying = n?.toList() }

    /** As the platform does: only installed packages can be disallowed. */
    @Implementation
    fun addDisallowedApplication(pkg: String): VpnService.Builder {
        RuntimeEnvironment.getApplication().packageManager.getApplicationInfo(pkg, 0)
        disallowed += pkg
        return real
    }

    @Implementation
    fun establish(): ParcelFileDescriptor? {
        if (refuse) return null
        failure?.let { throw it }
        descriptor?.let { open -> return ParcelFileDescriptor.adoptFd(open()) }
        val pair = IntArray(2)
        check(LibC.INSTANCE.socketpair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET, 0, pair) == 0) { "socketpair failed" }
        synchronized(ShadowTunBuilder) {
            peers += pair[1]
            specs += TunnelSpec(
                session, mtu, addresses.toList(), routes.toList(), dns.toList(), disallowed.toList(),
                families.toSet(), underlying, blocking, metered,
            )
        }
        return ParcelFileDescriptor.adoptFd(pair[0])
    }

    companion object {
        private val specs = mutableListOf<TunnelSpec>()
        private val peers = mutableListOf<Int>()

        /** establish() returns null, as when the user has not consented. */
        @Volatile var refuse = false

        /** establish() throws this, as the platform does for a configuration it rejects. */
        @Volatile var failure: RuntimeException? = null

        /** establish() returns this descriptor instead of a socketpair's end (and records nothing). */
        @Volatile var descriptor: (() -> Int)? = null

        val established: List<TunnelSpec> get() = synchronized(this) { specs.toList() }

        /** The test's end of the newest tunnel. */
        val peerFd: Int get() = synchronized(this) { peers.last() }

        fun clear() = synchronized(this) {
            for (fd in peers) LibC.INSTANCE.close(fd)
            peers.clear()
            specs.clear()
            refuse = false
            failure = null
            descriptor = null
        }
    }
}

/**
 * Robolectric's ParcelFileDescriptor shadow models files through
 * RandomAccessFile and cannot carry a socket; the app hands the engine a
 * dup()ed, detached raw descriptor, so this one keeps real descriptors.
 */
@Implements(ParcelFileDescriptor::class)
class ShadowRawParcelFileDescriptor {
    private var fd = -1

    @Implementation fun getFd(): Int = fd.also { check(it >= 0) { "closed" } }

    @Implementation
    fun dup(): ParcelFileDescriptor {
        val copy = LibC.INSTANCE.dup(getFd())
        check(copy >= 0) { "dup failed" }
        return adoptFd(copy)
    }

    @Implementation fun detachFd(): Int = getFd().also { fd = -1 }

    @Implementation
    fun close() {
        if (fd >= 0) LibC.INSTANCE.close(fd)
        fd = -1
    }

    companion object {
        @JvmStatic
        @Implementation
        fun adoptFd(raw: Int): ParcelFileDescriptor {
            val pfd = ReflectionHelpers.callConstructor(
                ParcelFileDescriptor::class.java,
                ReflectionHelpers.ClassParameter.from(FileDescriptor::class.java, FileDescriptor()),
            )
            (org.robolectric.shadow.api.Shadow.extract<ShadowRawParcelFileDescriptor>(pfd)).fd = raw
            return pfd
        }
    }
}

/**
 * protect(int) reaches the kernel's VPN bypass through a native call that
 * Robolectric does not have; on the host there is no VPN to bypass, so it
 * records the descriptor (the test checks the engine protected its
 * upstream sockets) and succeeds.
 */
@Implements(VpnService::class)
class ShadowProtectingVpnService : ShadowVpnService() {
    @Implementation
    fun protect(fd: Int): Boolean {
        synchronized(Companion) { protectedFds += fd }
        return true
    }

    /** Platform state only the system knows: always-on lockdown. */
    @Implementation
    fun isLockdownEnabled(): Boolean = lockdown

    /** Needs the system's VPN manager; recorded instead. */
    @Implementation
    fun setUnderlyingNetworks(networks: Array<Network>?): Boolean {
        underlying = networks?.toList()
        return true
    }

    companion object {
        val protectedFds = mutableListOf<Int>()

        @Volatile var lockdown = false

        /** What prepare() returns: the consent dialog's intent until the user has allowed the VPN. */
        var consent: android.content.Intent? = null
            set(value) {
                field = value
                ShadowVpnService.setPrepareResult(value)
            }

        @Volatile var underlying: List<Network>? = null

        fun reset() {
            synchronized(this) { protectedFds.clear() }
            lockdown = false
            underlying = null
            consent = null
        }
    }
}

/** Installs [pkg] as a launchable app, for "Excluded apps". */
fun installApp(pkg: String) {
    val pm = RuntimeEnvironment.getApplication().packageManager
    val info = android.content.pm.PackageInfo().apply {
        packageName = pkg
        applicationInfo = android.content.pm.ApplicationInfo().apply { packageName = pkg; name = pkg }
    }
    org.robolectric.Shadows.shadowOf(pm).installPackage(info)
    check(runCatching { pm.getApplicationInfo(pkg, 0) }.isSuccess) { "$pkg not installed" }
}

/**
 * TileService.startActivityAndCollapse(PendingIntent) (API 34+) asks the
 * system's status bar service, which Robolectric does not have (the real
 * method would throw). This one does what the system does: sends the
 * PendingIntent, so the activity start shows in the application's
 * started activities; and records it.
 */
@Implements(android.service.quicksettings.TileService::class)
class ShadowCollapsingTileService : org.robolectric.shadows.ShadowTileService() {
    @Implementation
    fun startActivityAndCollapse(pendingIntent: android.app.PendingIntent) {
        collapsedTo = pendingIntent
        pendingIntent.send()
    }

    companion object {
        @Volatile var collapsedTo: android.app.PendingIntent? = null
    }
}
