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
import app.dotcore.ffi.tunnelConfig
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
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import java.io.IOException

/**
 * The VPN: a tunnel that carries only DNS, handed to the Rust engine.
 *
 * In the manner of Mullvad's TalpidVpnService, Kotlin builds the tunnel
 * (addresses, routes and DNS servers from the core) and passes the
 * descriptor to Rust; Rust calls back to protect its upstream sockets.
 * Apps are told to use the core's virtual DNS addresses, which are the only
 * routes into the tunnel, so all other traffic never touches it.
 *
 * Every decision is [ServiceMachine]'s. This class has one coroutine scope
 * and one event channel: the system's calls, the engine's callbacks and the
 * platform's signals (default-network changes, debounced; power state) are
 * sent as [Command]s, and one coroutine, off the main thread because the
 * engine's `stop()` blocks, takes them in order and alone touches the
 * machine, the tunnel and the engine. It also reports the things that break
 * a DNS-only VPN (Android's Private DNS in strict mode, always-on lockdown)
 * instead of failing silently.
 */
class DotVpnService : VpnService() {
    private val hub = StatusHub.DEFAULT
    private val machine = ServiceMachine()
    private val main = Handler(Looper.getMainLooper())
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    /** Unlimited: senders are the main thread and engine callbacks, which must never wait. */
    private val commands = Channel<Command>(Channel.UNLIMITED)

    private sealed interface Command {
        data class Machine(val event: ServiceEvent, val startId: Int) : Command

        data class Network(val snapshot: NetworkSnapshot) : Command

        data class Power(val state: PowerState) : Command

        /** onDestroy: free what is left, then end the consumer. */
        data object Destroy : Command
    }

    private lateinit var settingsRepository: SettingsRepository
    private lateinit var networkMonitor: NetworkMonitor
    private lateinit var powerMonitor: PowerMonitor
    private lateinit var debouncer: NetworkChangeDebouncer

    // Touched by the consumer coroutine only.
    private var tunnel: ParcelFileDescriptor? = null
    private var engine: DotEngine? = null

    @Volatile private var latestStartId = 0

    @Volatile private var defaultNetwork: Network? = null

    @Volatile private var privateDnsServerName: String? = null

    @Volatile private var lockdown = false

    /** Set on the main thread in onDestroy; later callbacks must not post a notification or the ticker. */
    @Volatile private var destroyed = false

    /**
     * Whether the ongoing notification is up. The main thread redraws it
     * while the consumer may be removing it: both under this lock, so a
     * redraw never brings back a notification that was just removed.
     */
    private val foregroundLock = Any()
    private var inForeground = false

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
        debouncer = NetworkChangeDebouncer(scope) { snapshot -> commands.trySend(Command.Network(snapshot)) }
        networkMonitor = NetworkMonitor(getSystemService(ConnectivityManager::class.java), main, networkListener)
        networkMonitor.start()
        powerMonitor = PowerMonitor(this) { state -> onPowerState(state) }
        powerMonitor.start()
        scope.launch {
            for (command in commands) {
                // One engine at a time in the process: a service created
                // while the previous instance is still stopping its engine
                // waits here instead of interleaving with it.
                ENGINE_LOCK.withLock { execute(command) }
                if (command == Command.Destroy) break
            }
            scope.cancel()
        }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        latestStartId = startId
        when (intent?.action) {
            ACTION_STOP -> submit(ServiceEvent.Stop)
            ACTION_APPLY -> submit(ServiceEvent.SettingsChanged(settingsRepository.load()))
            ACTION_RECHECK -> submit(ServiceEvent.Recheck)
            // ACTION_START, the system's always-on start (action
            // android.net.VpnService), and a restart after the process was
            // killed (null intent, START_STICKY).
            else -> {
                // Within the 5 s that startForegroundService allows, before
                // any queued work.
                enterForeground()
                submit(ServiceEvent.Start(settingsRepository.load()))
                // Android sends the always-on start again when the always-on
                // settings change (lockdown among them), to a service that
                // is already running: re-read them.
                submit(ServiceEvent.Recheck)
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
        destroyed = true
        main.removeCallbacks(notificationTicker)
        networkMonitor.stop()
        powerMonitor.stop()
        // Stopped by the system without going through the machine (for
        // example stopService from outside): the consumer frees what is
        // left. The engine's stop() blocks for up to seconds, so the main
        // thread does not wait for it.
        commands.trySend(Command.Destroy)
        commands.close()
        super.onDestroy()
    }

    // --- the consumer ---------------------------------------------------------

    private fun submit(event: ServiceEvent) {
        commands.trySend(Command.Machine(event, latestStartId))
    }

    private fun execute(command: Command) {
        try {
            when (command) {
                is Command.Machine -> handle(command.event, command.startId)
                is Command.Network -> deliverNetworkChange(command.snapshot)
                is Command.Power -> applyPowerState(command.state)
                Command.Destroy -> {
                    stopEngine()
                    closeTunnel()
                    if (machine.state.isOn) hub.serviceState(ServiceState.Stopped(null))
                    DotTileService.requestUpdate(applicationContext)
                }
            }
        } catch (e: Exception) {
            // A bug outside any effect (those are caught one by one): the
            // consumer goes on, and a service that is on stops visibly
            // rather than showing "Starting" or "On" for nothing.
            Log.e(TAG, "$command failed", e)
            if (command is Command.Machine && machine.state.isOn) {
                try {
                    handle(ServiceEvent.Failed(unexpected(null, e)), command.startId)
                } catch (again: Exception) {
                    Log.e(TAG, "failing after $command failed", again)
                }
            }
        }
    }

    private fun handle(first: ServiceEvent, startId: Int) {
        var event: ServiceEvent? = first
        while (event != null) {
            val t = machine.on(event)
            // "Starting" shows while the effects run; "Stopped" only once
            // the teardown is done (engine stopped, notification gone).
            if (t.next !is ServiceState.Stopped) hub.serviceState(t.next)
            event = t.then
            for (effect in t.effects) {
                val failure = try {
                    run(effect, startId)
                } catch (e: Exception) {
                    // Anything the platform or the bindings throw that the
                    // effect did not expect, such as establish()'s
                    // IllegalArgumentException: a failure like the others.
                    Log.e(TAG, "$effect threw", e)
                    unexpected(effect, e)
                }
                if (failure != null) {
                    Log.w(TAG, "$effect failed: $failure")
                    event = ServiceEvent.Failed(failure)
                    break
                }
            }
        }
        hub.serviceState(machine.state)
        main.post { updateTicker() }
        DotTileService.requestUpdate(applicationContext)
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
        Effect.RecheckPlatform -> {
            lockdown = readLockdown()
            publishWarnings()
            null
        }
        is Effect.LeaveForeground -> {
            synchronized(foregroundLock) {
                inForeground = false
                stopForeground(STOP_FOREGROUND_REMOVE)
            }
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
            synchronized(foregroundLock) { inForeground = true }
        } catch (e: SecurityException) {
            // No VPN consent yet: the tunnel cannot be built either, and the
            // start fails with a message from establishTunnel.
            Log.w(TAG, "cannot enter the foreground", e)
        }
    }

    private fun refreshNotification() {
        synchronized(foregroundLock) {
            if (inForeground && !destroyed) Notifications.update(this, StatusTexts.notification(hub.status.value))
        }
    }

    private fun updateTicker() {
        main.removeCallbacks(notificationTicker)
        if (!destroyed && hub.status.value.service is ServiceState.Running && powerMonitor.current == PowerState.INTERACTIVE) {
            main.postDelayed(notificationTicker, NOTIFICATION_REFRESH_MILLIS)
        }
    }

    private fun establishTunnel(settings: Settings): String? {
        val spec = tunnelConfig()
        val builder = Builder()
            .setSession(EngineConfigs.serverLabel(settings, providers()))
            .setMtu(spec.mtu)
            .setConfigureIntent(
                PendingIntent.getActivity(
                    this,
                    0,
                    Intent(this, MainActivity::class.java),
                    PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
                ),
            )
        // All from the core: only the virtual DNS servers are routed into
        // the tunnel, apps are told to use them, and everything else
        // bypasses the VPN.
        for (a in spec.interfaceAddresses) builder.addAddress(a.address, a.prefixLength)
        for (r in spec.routes) builder.addRoute(r.address, r.prefixLength)
        for (dns in spec.dnsServers) builder.addDnsServer(dns)
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
        lockdown = readLockdown()
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

    /** Never throws: a teardown that failed halfway would leave the service in the foreground. */
    private fun stopEngine() {
        val e = engine ?: return
        engine = null
        val final = try {
            e.stop()
            e.stats()
        } catch (x: RuntimeException) {
            Log.w(TAG, "stopping the engine", x)
            null
        }
        hub.engineStopped(final)
        runCatching { e.close() }
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
        commands.trySend(Command.Power(state))
        updateTicker()
    }

    private fun applyPowerState(state: PowerState) {
        try {
            engine?.setPowerState(state)
        } catch (x: DotException) {
            Log.w(TAG, "setPowerState: ${describe(x)}")
        }
    }

    /** `isLockdownEnabled` (API 29+): asked again on every recheck, as the user may change it any time. */
    private fun readLockdown(): Boolean = Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q && isLockdownEnabled

    private fun publishWarnings() {
        hub.setWarnings(Warning.current(privateDnsServerName, lockdown))
        main.post { refreshNotification() }
    }

    companion object {
        private const val TAG = "dotcore"
        private const val NOTIFICATION_REFRESH_MILLIS = 15_000L

        /** Held by a service instance's consumer while it handles one command. */
        private val ENGINE_LOCK = Mutex()

        const val ACTION_START = "app.dotcore.action.START"
        const val ACTION_STOP = "app.dotcore.action.STOP"
        const val ACTION_APPLY = "app.dotcore.action.APPLY_SETTINGS"
        const val ACTION_RECHECK = "app.dotcore.action.RECHECK"

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

        /** Re-reads the platform settings behind the warnings (the status screen came to the front). */
        fun recheck(context: Context) {
            context.startService(intent(context, ACTION_RECHECK))
        }

        /** For the user: what [effect] ran into, without a stack trace. */
        fun unexpected(effect: Effect?, e: Exception): String {
            val what = e.message?.takeIf { it.isNotBlank() } ?: e.javaClass.simpleName
            return when (effect) {
                is Effect.EstablishTunnel -> "the VPN could not be set up: $what"
                is Effect.StartEngine -> "the engine could not start: $what"
                else -> "unexpected error: $what"
            }
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
