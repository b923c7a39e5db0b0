package app.dotcore.robo

import android.app.Application
import android.content.Context
import android.content.Intent
import android.net.ConnectivityManager
import android.net.LinkProperties
import android.net.Network
import android.net.NetworkCapabilities
import android.os.Looper
import android.view.View
import android.view.ViewGroup
import app.dotcore.DotVpnService
import app.dotcore.SettingsRepository
import app.dotcore.logic.Settings
import app.dotcore.shared.AppDriver
import app.dotcore.ffi.tunnelConfig
import org.junit.Assert.assertEquals
import app.dotcore.logic.AppStatus
import app.dotcore.logic.ServiceState
import app.dotcore.logic.StatusHub
import org.junit.Assert.fail
import org.robolectric.Robolectric
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ServiceController
import java.io.File
import java.net.InetAddress
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

val app: Application get() = RuntimeEnvironment.getApplication()
val hub: StatusHub get() = StatusHub.DEFAULT
val status: AppStatus get() = hub.status.value

/**
 * Puts the process-wide state every test shares back to a fresh install:
 * no tunnel or engine records, no VPN or tile shadow state, the status
 * hub stopped without an error (a previous test's failure must not satisfy
 * this test's waits), [dnsServers] as the network's resolvers and, when
 * given, [settings] saved.
 */
fun freshApp(dnsServers: List<String>? = listOf("192.0.2.1"), settings: Settings? = null) {
    ShadowTunBuilder.clear()
    ShadowProtectingVpnService.reset()
    ShadowCollapsingTileService.collapsedTo = null
    SpyDotEngine.clear()
    hub.serviceState(ServiceState.Stopped(null))
    if (dnsServers != null) configureNetwork(dnsServers)
    if (settings != null) SettingsRepository(app).save(settings)
}

/** Stops the service a test started (releasing a held engine stop first) and forgets the records. */
fun endTest(running: RunningService?) {
    SpyDotEngine.stopGate?.countDown()
    running?.stop()
    ShadowTunBuilder.clear()
    ShadowProtectingVpnService.reset()
    SpyDotEngine.clear()
}

/** Runs the main looper until [condition] holds; the service's worker thread runs meanwhile. */
fun awaitUntil(what: String, timeoutMillis: Long = 20_000, condition: () -> Boolean) {
    val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis)
    while (true) {
        shadowOf(Looper.getMainLooper()).idle()
        if (condition()) return
        if (System.nanoTime() > deadline) fail("timed out after $timeoutMillis ms waiting for: $what (status: $status)")
        Thread.sleep(20)
    }
}

fun <T : View> View.all(type: Class<T>): List<T> {
    val out = mutableListOf<T>()
    fun walk(v: View) {
        if (type.isInstance(v)) out += type.cast(v)
        if (v is ViewGroup) for (i in 0 until v.childCount) walk(v.getChildAt(i))
    }
    walk(this)
    return out
}

val connectivity: ConnectivityManager get() = app.getSystemService(ConnectivityManager::class.java)

/** Gives [network] (by default Robolectric's active Wi-Fi network) [dns] as its resolvers. */
fun configureNetwork(
    dns: List<String>,
    privateDnsServerName: String? = null,
    network: Network = connectivity.activeNetwork ?: error("no active network"),
): Pair<Network, LinkProperties> {
    val link = LinkProperties().apply {
        setDnsServers(dns.map { InetAddress.getByName(it) })
        if (privateDnsServerName != null) {
            setUsePrivateDns(true)
            setPrivateDnsServerName(privateDnsServerName)
        }
    }
    val caps = NetworkCapabilities.Builder()
        .addTransportType(NetworkCapabilities.TRANSPORT_WIFI)
        .addCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET)
        .addCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)
        .addCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED)
        .build()
    val shadow = shadowOf(connectivity)
    shadow.setLinkProperties(network, link)
    shadow.setNetworkCapabilities(network, caps)
    return network to link
}

/** The service as the system runs it after startForegroundService(intent). */
class RunningService(intent: Intent) {
    val controller: ServiceController<DotVpnService> =
        Robolectric.buildService(DotVpnService::class.java, intent).create()
    val service: DotVpnService get() = controller.get()
    private var startId = 0

    init {
        command(intent)
    }

    fun command(intent: Intent) {
        controller.withIntent(intent).startCommand(0, ++startId)
    }

    fun awaitRunning() = awaitUntil("service Running") { status.service is ServiceState.Running }

    /** Stops through the app's own stop action and destroys the service, as the system would. */
    fun stop() {
        if (status.service.isOn) {
            command(DotVpnService.intent(app, DotVpnService.ACTION_STOP))
            awaitUntil("service Stopped") { status.service is ServiceState.Stopped }
        }
        controller.destroy()
    }
}

/** The local Unbound DoT server of the Rust tests (`unbound-fixture`), run until closed. */
class Unbound private constructor(private val process: Process, private val info: Map<String, String>) :
    AutoCloseable {
    val dot get() = info.getValue("dot")
    val plain get() = info.getValue("plain")
    val dotName get() = info.getValue("dot_name")
    val leafPin get() = info.getValue("leaf_pin")
    val caPin get() = info.getValue("ca_pin")
    /** The PEM of the CA that issued the server's certificate (not a system CA). */
    val caPem: String get() = File(info.getValue("ca_pem_path")).readText()
    val aName get() = info.getValue("a_name")
    val aV4 get() = info.getValue("a_v4")

    override fun close() {
        runCatching { process.outputStream.close() }
        if (!process.waitFor(15, TimeUnit.SECONDS)) process.destroyForcibly()
    }

    companion object {
        fun start(): Unbound {
            val path = System.getProperty("dotcore.fixture") ?: error("dotcore.fixture not set (scripts/test-app.sh sets it)")
            check(File(path).canExecute()) { "$path missing: cargo build -p dotcore-tests --bin unbound-fixture" }
            val p = ProcessBuilder(path).redirectError(ProcessBuilder.Redirect.INHERIT).start()
            val line = CompletableFuture.supplyAsync { p.inputStream.bufferedReader().readLine() }
                .get(60, TimeUnit.SECONDS) ?: error("unbound-fixture exited without starting")
            // One flat JSON object of strings and numbers.
            val info = Regex("\"(\\w+)\":(?:\"((?:[^\"\\\\]|\\\\.)*)\"|(-?\\d+))").findAll(line)
                .associate { m -> m.groupValues[1] to (m.groupValues[3].ifEmpty { m.groupValues[2].replace("\\/", "/") }) }
            return Unbound(p, info)
        }
    }
}

/** An [Unbound] for one test class (`@ClassRule`): started before its first test, closed after its last. */
class UnboundPerClass : org.junit.rules.ExternalResource() {
    private var started: Unbound? = null
    val server: Unbound get() = started ?: error("Unbound is started only while the test class runs")

    override fun before() {
        started = Unbound.start()
    }

    override fun after() {
        started?.close()
        started = null
    }
}

/** Sends an A query for [name] into the tunnel as an app would; the DNS answer, or null. */
fun queryThroughTunnel(name: String, id: Int, timeoutMillis: Int = 10_000): ByteArray? {
    val tunnel = tunnelConfig()
    val src = tunnel.interfaceAddresses.first { !it.address.contains(':') }.address
    val dst = tunnel.dnsServers.first { !it.contains(':') }
    val packet = Packets.udp4(src, dst, 40_000 + id, 53, Packets.dnsQuery(id, name))
    val fd = ShadowTunBuilder.peerFd
    assertEquals(packet.size.toLong(), LibC.INSTANCE.write(fd, packet, packet.size.toLong()))
    val deadline = System.currentTimeMillis() + timeoutMillis
    while (System.currentTimeMillis() < deadline) {
        val reply = LibC.readPacket(fd, 200) ?: continue
        val dns = Packets.udp4Payload(reply) ?: continue
        if (Packets.dnsId(dns) == id) return dns
    }
    return null
}

/**
 * The shared checks' ([app.dotcore.shared.AppChecks]) view of the app under
 * Robolectric: the service started as the system would, and the intents
 * the app sends it delivered by hand (Robolectric only records them).
 */
class RobolectricDriver : AppDriver {
    var running: RunningService? = null
        private set

    override val status: AppStatus get() = hub.refreshStats()

    override fun start(settings: Settings) {
        SettingsRepository(app).save(settings)
        running = RunningService(DotVpnService.intent(app, DotVpnService.ACTION_START)).also { it.awaitRunning() }
    }

    override fun apply(settings: Settings) {
        SettingsRepository(app).save(settings)
        DotVpnService.applySettings(app)
        val sent = generateSequence { shadowOf(app).nextStartedService }.last { it.action == DotVpnService.ACTION_APPLY }
        (running ?: error("not started")).command(sent)
    }

    override fun waitFor(what: String, timeoutMillis: Long, condition: () -> Boolean) =
        awaitUntil(what, timeoutMillis, condition)
}
