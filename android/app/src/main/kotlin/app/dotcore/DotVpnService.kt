package app.dotcore

import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.content.pm.ServiceInfo
import android.net.ConnectivityManager
import android.net.Network
import android.net.VpnService
import android.os.Build
import android.os.Handler
import android.os.Looper
import android.os.ParcelFileDescriptor
import android.system.OsConstants
import android.util.Log
import app.dotcore.ffi.DotEngine
import app.dotcore.ffi.DotException
import app.dotcore.ffi.EngineEvent
import app.dotcore.ffi.HostDelegate
import app.dotcore.ffi.PowerState
import app.dotcore.ffi.providers
import app.dotcore.ffi.tunInterfaceAddresses
import app.dotcore.ffi.virtualDnsAddresses
import app.dotcore.logic.DnsServers
import app.dotcore.logic.Effect
import app.dotcore.logic.EngineConfigs
import app.dotcore.logic.NetworkChangeDebouncer
import app.dotcore.logic.NetworkSnapshot
import app.dotcore.logic.ServiceEvent
import app.dotcore.logic.ServiceMachine
import app.dotcore.logic.ServiceState
import app.dotcore.logic.Settings
import app.dotcore.logic.StatusHub
import app.dotcore.logic.StatusTexts
import app.dotcore.logic.Warning
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.cancel
import java.io.IOException
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

/**
 * The VPN: a tunnel that carries only DNS, handed to the Rust engine.
 *
 * In the manner of Mullvad's TalpidVpnService, Kotlin builds the tunnel
 * (addresses, routes and DNS servers from the core) and passes the
 * descriptor to Rust; Rust calls back to protect its upstream sockets.
 * Apps are told to use the core's virtual DNS addresses, which are the only
 * routes into the tunnel, so all other traffic never touches it.
 *
 * Every decision is [ServiceMachine]'s; this class executes its effects on
 * one worker thread (the engine's `stop()` blocks) and feeds the platform's
 * signals to the engine: default-network changes (debounced), power state,
 * and the things that break a DNS-only VPN (Android's Private DNS in strict
 * mode, always-on lockdown), which it reports instead of failing silently.
 */
class DotVpnService : VpnService() {
    private val hub = StatusHub.DEFAULT
    private val machine = ServiceMachine()
    private val main = Handler(Looper.getMainLooper())
    private val worker = Executors.newSingleThreadExecutor { r -> Thread(r, "dotcore-service") }
    private val scope = CoroutineScope(SupervisorJob() + worker.asCoroutineDispatcher())

    private lateinit var settingsRepository: SettingsRepository
    private lateinit var networkMonitor: NetworkMonitor
    private lateinit var powerMonitor: PowerMonitor
    private lateinit var debouncer: NetworkChangeDebouncer

    // Touched on the worker thread only.
    private var tunnel: ParcelFileDescriptor? = null
    private var engine: DotEngine? = null

    @Volatile private var latestStartId = 0

    @Volatile private var defaultNetwork: Network? = null

    @Volatile private var privateDnsServerName: String? = null

    @Volatile private var lockdown = false

    /** What the engine calls back; both methods return at once. */
    private val delegate = object : HostDelegate {
        override fun protectSocket(fd: Int): Boolean = protect(fd)

        override fun onEvent(event: EngineEvent) {
            hub.onEngineEvent(event)
            ServiceEvent.fromEngine(event)?.let { submit(it) }
            if (event !is EngineEvent.Query) main.post { refreshNotification() }
        }
    }

    private val networkListener = object : NetworkMonitor.Listener {
        override fun onNetwork(network: Network, snapshot: NetworkSnapshot) {
            if (network != defaultNetwork) {
                defaultNetwork = network
                // At once, not debounced: it decides the VPN's metered state
                // and which network the system attributes our traffic to.
                setUnderlyingNetworks(arrayOf(network))
            }
            privateDnsServerName = snapshot.privateDnsServerName
            publishWarnings()
            debouncer.submit(snapshot)
        }

        override fun onNetworkLost(network: Network) {
            if (network == defaultNetwork) {
                defaultNetwork = null
                setUnderlyingNetworks(null)
            }
            debouncer.lost(network.networkHandle)
        }
    }

    /** Refreshes the notification's counters while the screen is on (nobody sees it otherwise). */
    private val notificationTicker = object : Runnable {
        override fun run() {
            hub.refreshStats()
            refreshNotification()
            main.postDelayed(this, NOTIFICATION_REFRESH_MILLIS)
        }
    }

    override fun onCreate() {
        super.onCreate()
        settingsRepository = SettingsRepository(this)
        debouncer = NetworkChangeDebouncer(scope) { snapshot -> deliverNetworkChange(snapshot) }
        networkMonitor = NetworkMonitor(getSystemService(ConnectivityManager::class.java), main, networkListener)
        networkMonitor.start()
        powerMonitor = PowerMonitor(this) { state -> onPowerState(state) }
        powerMonitor.start()
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        latestStartId = startId
        when (intent?.action) {
            ACTION_STOP -> submit(ServiceEvent.Stop)
            ACTION_APPLY -> submit(ServiceEvent.SettingsChanged(settingsRepository.load()))
            // ACTION_START, the system's always-on start (action
            // android.net.VpnService), and a restart after the process was
            // killed (null intent, START_STICKY).
            else -> {
                // Within the 5 s that startForegroundService allows, before
                // any queued work.
                enterForeground()
                submit(ServiceEvent.Start(settingsRepository.load()))
            }
        }
        return START_STICKY
    }

    override fun onRevoke() {
        // Another VPN app started, or the user revoked us in Settings. The
        // tunnel is already dead; tear down and stop (the default
        // implementation would only call stopSelf()).
        submit(ServiceEvent.Revoked)
    }

    override fun onDestroy() {
        main.removeCallbacks(notificationTicker)
        networkMonitor.stop()
        powerMonitor.stop()
        scope.cancel()
        // Stopped by the system without going through the machine (for
        // example stopService from outside): free what is left.
        worker.execute {
            stopEngine()
            closeTunnel()
            if (machine.state.isOn) hub.serviceState(ServiceState.Stopped(null))
            DotTileService.requestUpdate(this)
        }
        worker.shutdown()
        worker.awaitTermination(STOP_TIMEOUT_SECONDS, TimeUnit.SECONDS)
        super.onDestroy()
    }

    // --- the state machine --------------------------------------------------

    private fun submit(event: ServiceEvent) {
        val startId = latestStartId
        worker.execute { handle(event, startId) }
    }

    private fun handle(first: ServiceEvent, startId: Int) {
        var event: ServiceEvent? = first
        while (event != null) {
            val t = machine.on(event)
            hub.serviceState(machine.state)
            event = t.then
            for (effect in t.effects) {
                val failure = run(effect, startId)
                if (failure != null) {
                    Log.w(TAG, "$effect failed: $failure")
                    event = ServiceEvent.Failed(failure)
                    break
                }
            }
        }
        hub.serviceState(machine.state)
        main.post { updateTicker() }
        DotTileService.requestUpdate(this)
    }

    /** Executes [effect]; returns why it failed, or null. */
    private fun run(effect: Effect, startId: Int): String? = when (effect) {
        Effect.EnterForeground -> {
            enterForeground()
            null
        }
        is Effect.EstablishTunnel -> establishTunnel(effect.settings)
        is Effect.StartEngine -> startEngine(effect.settings)
        Effect.StopEngine -> {
            stopEngine()
            null
        }
        Effect.CloseTunnel -> {
            closeTunnel()
            null
        }
        Effect.ClearQueryLog -> {
            hub.clearQueryLog()
            null
        }
        Effect.RefreshNotification -> {
            refreshNotification()
            null
        }
        is Effect.LeaveForeground -> {
            stopForeground(STOP_FOREGROUND_REMOVE)
            effect.error?.let { Notifications.alert(this, "dotcore stopped", it) }
            // Only if no newer start request arrived meanwhile.
            stopSelf(startId)
            null
        }
    }

    // --- effects --------------------------------------------------------------

    private fun enterForeground() {
        val notification = Notifications.ongoing(this, StatusTexts.notification(hub.status.value))
        try {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE) {
                // systemExempted: the type Android 14+ reserves for, among
                // others, VPN apps the user has allowed (the VPN consent
                // grants the ACTIVATE_VPN app-op it checks). A VpnService
                // fits none of the user-facing types (dataSync is time-limited
                // since Android 15); specialUse would need a Play review
                // justification for what the platform already recognises.
                startForeground(
                    Notifications.ID_ONGOING,
                    notification,
                    ServiceInfo.FOREGROUND_SERVICE_TYPE_SYSTEM_EXEMPTED,
                )
            } else {
                startForeground(Notifications.ID_ONGOING, notification)
            }
        } catch (e: SecurityException) {
            // No VPN consent yet: the tunnel cannot be built either, and the
            // start fails with a message from establishTunnel.
            Log.w(TAG, "cannot enter the foreground", e)
        }
    }

    private fun refreshNotification() {
        if (hub.status.value.service.isOn) Notifications.update(this, StatusTexts.notification(hub.status.value))
    }

    private fun updateTicker() {
        main.removeCallbacks(notificationTicker)
        if (hub.status.value.service is ServiceState.Running && powerMonitor.current == PowerState.INTERACTIVE) {
            main.postDelayed(notificationTicker, NOTIFICATION_REFRESH_MILLIS)
        }
    }

    private fun establishTunnel(settings: Settings): String? {
        val builder = Builder()
            .setSession(EngineConfigs.serverLabel(settings, providers()))
            .setMtu(MTU)
            .setConfigureIntent(
                PendingIntent.getActivity(
                    this,
                    0,
                    Intent(this, MainActivity::class.java),
                    PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
                ),
            )
        for (a in tunInterfaceAddresses()) builder.addAddress(a.address, a.prefixLength)
        // Only the virtual DNS servers are routed into the tunnel; apps are
        // told to use them, and everything else bypasses the VPN.
        for (dns in virtualDnsAddresses()) {
            builder.addDnsServer(dns)
            builder.addRoute(dns, if (dns.contains(':')) 128 else 32)
        }
        // The engine polls the descriptor and must never block on it.
        builder.setBlocking(false)
        builder.allowFamily(OsConstants.AF_INET)
        builder.allowFamily(OsConstants.AF_INET6)
        // Our own sockets never enter the tunnel (protect() covers the
        // engine's too), and this app's default network stays the real one.
        builder.addDisallowedApplication(packageName)
        for (app in settings.excludedApps.sorted()) {
            try {
                builder.addDisallowedApplication(app)
            } catch (e: PackageManager.NameNotFoundException) {
                Log.w(TAG, "excluded app $app is not installed; ignored")
            }
        }
        builder.setUnderlyingNetworks((defaultNetwork ?: networkMonitor.currentSnapshot()?.first)?.let { arrayOf(it) })
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
            // Inherit meteredness from the underlying network.
            builder.setMetered(false)
        }
        val pfd = try {
            builder.establish()
        } catch (e: IllegalStateException) {
            return "the VPN could not be set up: ${e.message}"
        } catch (e: SecurityException) {
            return "the VPN could not be set up: ${e.message}"
        } ?: return "dotcore is not allowed to set up a VPN. Open dotcore and turn it on there."
        // The new interface replaced the old one; close the old descriptor.
        tunnel?.close()
        tunnel = pfd
        hub.tunnelEstablished()
        lockdown = Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q && isLockdownEnabled
        publishWarnings()
        return null
    }

    private fun startEngine(settings: Settings): String? {
        val pfd = tunnel ?: return "no tunnel"
        val network = debouncer.current ?: networkMonitor.currentSnapshot()?.second
        val resolvers = network?.let { DnsServers.usable(it.dnsServers) }.orEmpty()
        val config = when (val r = EngineConfigs.toEngineConfig(settings, resolvers)) {
            is EngineConfigs.Result.Invalid -> return "settings: ${r.error.message}"
            is EngineConfigs.Result.Ok -> r.config
        }
        val e = try {
            DotEngine(config, delegate)
        } catch (x: DotException) {
            return describe(x)
        }
        hub.engineStarted(EngineConfigs.serverLabel(settings, providers()), settings.mode, settings.queryLog) { e.stats() }
        try {
            e.setPowerState(powerMonitor.current)
            // Each engine gets its own duplicate of the tunnel descriptor and
            // closes it on stop(); ours keeps the tunnel up in between, so
            // a settings change restarts the engine, not the VPN.
            e.start(pfd.dup().detachFd())
        } catch (x: DotException) {
            e.stop()
            e.close()
            hub.engineStopped(null)
            return describe(x)
        } catch (x: IOException) {
            e.stop()
            e.close()
            hub.engineStopped(null)
            return "cannot duplicate the tunnel descriptor: ${x.message}"
        }
        engine = e
        debouncer.markDelivered(network)
        return null
    }

    private fun stopEngine() {
        val e = engine ?: return
        engine = null
        e.stop()
        val final = try {
            e.stats()
        } catch (x: RuntimeException) {
            null
        }
        hub.engineStopped(final)
        e.close()
    }

    private fun closeTunnel() {
        try {
            tunnel?.close()
        } catch (e: IOException) {
            Log.w(TAG, "closing the tunnel", e)
        }
        tunnel = null
    }

    // --- platform signals -------------------------------------------------------

    /** On the worker (the debouncer's scope). */
    private fun deliverNetworkChange(snapshot: NetworkSnapshot) {
        val e = engine ?: return
        try {
            e.onNetworkChanged(snapshot.toNetworkInfo())
        } catch (x: DotException) {
            Log.w(TAG, "onNetworkChanged: ${describe(x)}")
        }
    }

    /** On the main thread (the power receiver). */
    private fun onPowerState(state: PowerState) {
        worker.execute {
            try {
                engine?.setPowerState(state)
            } catch (x: DotException) {
                Log.w(TAG, "setPowerState: ${describe(x)}")
            }
        }
        updateTicker()
    }

    private fun publishWarnings() {
        hub.setWarnings(Warning.current(privateDnsServerName, lockdown))
        main.post { refreshNotification() }
    }

    companion object {
        private const val TAG = "dotcore"
        private const val MTU = 1500
        private const val NOTIFICATION_REFRESH_MILLIS = 15_000L
        private const val STOP_TIMEOUT_SECONDS = 5L

        const val ACTION_START = "app.dotcore.action.START"
        const val ACTION_STOP = "app.dotcore.action.STOP"
        const val ACTION_APPLY = "app.dotcore.action.APPLY_SETTINGS"

        fun intent(context: Context, action: String): Intent =
            Intent(context, DotVpnService::class.java).setAction(action)

        /** Starts the VPN; the caller has checked `VpnService.prepare()` is null. */
        fun start(context: Context) {
            context.startForegroundService(intent(context, ACTION_START))
        }

        fun stop(context: Context) {
            context.startService(intent(context, ACTION_STOP))
        }

        /** Applies saved settings to the running service (engine or tunnel restart as needed). */
        fun applySettings(context: Context) {
            context.startService(intent(context, ACTION_APPLY))
        }

        fun describe(e: DotException): String = when (e) {
            is DotException.InvalidConfig -> "${e.field}: ${e.reason}"
            is DotException.Tun -> "tunnel: ${e.reason}"
            is DotException.Internal -> "engine: ${e.reason}"
            is DotException.InvalidQuery -> e.reason
            is DotException.Delegate -> e.reason
            is DotException.AlreadyStarted -> "the engine already has a tunnel"
            is DotException.Stopped -> "the engine is stopped"
        }
    }
}
