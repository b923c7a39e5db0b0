package app.dotcore

import android.Manifest
import android.app.Activity
import android.content.Intent
import android.content.pm.PackageManager
import android.net.VpnService
import android.os.Build
import android.os.Bundle
import android.view.View
import android.widget.Switch
import android.widget.TextView
import app.dotcore.ffi.providers
import app.dotcore.logic.AppStatus
import app.dotcore.logic.EngineConfigs
import app.dotcore.logic.Formats
import app.dotcore.logic.ServiceState
import app.dotcore.logic.StatusHub
import app.dotcore.logic.StatusTexts
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch

/**
 * The status screen: on/off, server and mode, whether the server is
 * validated, live counters, warnings, and the recent queries when the
 * query log is on. Everything it shows comes from [StatusHub]; the text is
 * made by [StatusTexts].
 *
 * Started with [ACTION_TURN_ON] (the Quick Settings tile, when Android has
 * no VPN consent for the app yet) it turns the VPN on as the switch would,
 * which asks for that consent.
 */
class MainActivity : Activity() {
    private val hub = StatusHub.DEFAULT
    private val formats = Formats()
    private var scope: CoroutineScope? = null
    private var rendering = false
    private var message: String? = null
    private var queryLogOn = false
    private var configuredServer = ""

    private lateinit var toggle: Switch
    private lateinit var serverLine: TextView
    private lateinit var stateLine: TextView
    private lateinit var validationLine: TextView
    private lateinit var adviceLine: TextView
    private lateinit var warningsView: TextView
    private lateinit var countersView: TextView
    private lateinit var logHeading: TextView
    private lateinit var logView: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        Ui.applyTheme(this)
        super.onCreate(savedInstanceState)
        val root = Ui.column(this)
        root.addView(Ui.title(this, "dotcore"))
        toggle = Ui.switch(this, "DNS over TLS").apply {
            setOnCheckedChangeListener { _, checked -> if (!rendering) onToggle(checked) }
        }
        root.addView(toggle)
        stateLine = Ui.text(this, "", 18f, bold = true)
        serverLine = Ui.text(this)
        validationLine = Ui.text(this, "", 15f).apply { setTextColor(Ui.palette(context).onBackgroundVariant) }
        adviceLine = Ui.text(this, "", 15f).apply { visibility = View.GONE }
        warningsView = Ui.warningCard(this).apply { visibility = View.GONE }
        root.addView(stateLine)
        root.addView(serverLine)
        root.addView(validationLine)
        root.addView(adviceLine)
        root.addView(warningsView)
        root.addView(Ui.heading(this, "Counters"))
        countersView = Ui.text(this, "", 15f)
        root.addView(countersView)
        root.addView(Ui.button(this, "Settings") { startActivity(Intent(this, SettingsActivity::class.java)) })
        logHeading = Ui.heading(this, "Recent queries")
        logView = Ui.text(this, "", 13f).apply {
            setTextIsSelectable(true)
            typeface = android.graphics.Typeface.MONOSPACE
        }
        root.addView(logHeading)
        root.addView(logView)
        Ui.setScrollingContent(this, root)
        // Not again when re-created (rotation): the request was handled.
        if (savedInstanceState == null) handle(intent)
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        handle(intent)
    }

    private fun handle(intent: Intent?) {
        if (intent?.action == ACTION_TURN_ON && !hub.status.value.service.isOn) onToggle(true)
    }

    override fun onStart() {
        super.onStart()
        val settings = SettingsRepository(this).load()
        queryLogOn = settings.queryLog
        configuredServer = try {
            EngineConfigs.serverLabel(settings, providers())
        } catch (e: LinkageError) {
            "unavailable (native library missing)"
        }
        val s = MainScope()
        scope = s
        s.launch { hub.status.collect { render(it) } }
        s.launch {
            while (isActive) {
                render(hub.refreshStats())
                delay(STATS_REFRESH_MILLIS)
            }
        }
    }

    override fun onResume() {
        super.onResume()
        // The user may be back from the VPN settings with always-on lockdown
        // switched: only the running service can ask Android about it.
        if (hub.status.value.service.isOn) DotVpnService.recheck(this)
    }

    override fun onStop() {
        scope?.cancel()
        scope = null
        super.onStop()
    }

    private fun render(status: AppStatus) {
        rendering = true
        toggle.isChecked = status.service.isOn
        rendering = false
        val svc = status.service
        stateLine.text = when (svc) {
            is ServiceState.Running -> "On"
            is ServiceState.Starting -> "Starting…"
            is ServiceState.Stopped -> message ?: svc.error?.let { "Stopped: $it" } ?: "Off"
        }
        serverLine.text = if (svc.isOn) {
            "Server: ${status.serverLabel} · ${formats.modeName(status.mode)} mode"
        } else {
            "Server: $configuredServer"
        }
        validationLine.text = StatusTexts.validation(status)
        val advice = StatusTexts.advice(status)
        adviceLine.text = advice.orEmpty()
        adviceLine.visibility = if (advice == null) View.GONE else View.VISIBLE
        warningsView.text = status.warnings.joinToString("\n\n") { "⚠ ${it.text}" }
        warningsView.visibility = if (status.warnings.isEmpty()) View.GONE else View.VISIBLE
        countersView.text = StatusTexts.counters(status.stats, formats).joinToString("\n")
        logHeading.visibility = if (queryLogOn) View.VISIBLE else View.GONE
        logView.visibility = logHeading.visibility
        if (queryLogOn) {
            val entries = hub.queryLog.snapshot()
            logView.text = if (entries.isEmpty()) {
                "No queries yet"
            } else {
                entries.joinToString("\n") { StatusTexts.logLine(it, formats) }
            }
        }
    }

    private fun onToggle(on: Boolean) {
        message = null
        if (!on) {
            DotVpnService.stop(this)
            return
        }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU &&
            checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        ) {
            // The service runs without it; the notification then only shows
            // in the task manager. Asked once alongside the first start.
            requestPermissions(arrayOf(Manifest.permission.POST_NOTIFICATIONS), REQUEST_NOTIFICATIONS)
        }
        val consent = VpnService.prepare(this)
        if (consent != null) {
            startActivityForResult(consent, REQUEST_VPN)
        } else {
            DotVpnService.start(this)
        }
    }

    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        if (requestCode != REQUEST_VPN) return
        if (resultCode == RESULT_OK) {
            DotVpnService.start(this)
        } else {
            message = "The VPN permission was not given (or another app is the always-on VPN)."
            render(hub.status.value)
        }
    }

    companion object {
        /** Turn the VPN on, asking for consent first when needed. */
        const val ACTION_TURN_ON = "app.dotcore.action.TURN_ON"

        private const val REQUEST_VPN = 1
        private const val REQUEST_NOTIFICATIONS = 2
        private const val STATS_REFRESH_MILLIS = 1_000L
    }
}
