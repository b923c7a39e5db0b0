package app.dotcore

import android.app.Activity
import android.app.AlertDialog
import android.content.Intent
import android.content.pm.PackageManager
import android.content.pm.ResolveInfo
import android.os.Build
import android.os.Bundle
import android.view.View
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.RadioGroup
import android.widget.TextView
import android.widget.Toast
import app.dotcore.ffi.Mode
import app.dotcore.ffi.Provider
import app.dotcore.ffi.providers
import app.dotcore.logic.CustomServerInput
import app.dotcore.logic.EngineConfigs
import app.dotcore.logic.FieldError
import app.dotcore.logic.ServerChoice
import app.dotcore.logic.Settings
import app.dotcore.logic.SettingsField
import app.dotcore.logic.StatusHub

/**
 * Settings: server (the core's provider catalogue, a custom server, or the
 * network's resolvers), strict or opportunistic, excluded apps, start on
 * boot, query log. On save the core validates the settings
 * (`validateConfig`) and its error is shown next to the input it names;
 * valid settings are stored and applied to a running service (a new
 * engine, or a new tunnel when the excluded apps changed).
 */
class SettingsActivity : Activity() {
    private lateinit var repository: SettingsRepository
    private lateinit var catalogue: List<Provider>
    private lateinit var loaded: Settings
    private var excluded: Set<String> = emptySet()

    private val serverButtons = mutableMapOf<Int, ServerChoice>()
    private lateinit var serverGroup: RadioGroup
    private lateinit var configId: EditText
    private lateinit var configIdBlock: LinearLayout
    private lateinit var customBlock: LinearLayout
    private lateinit var hostname: EditText
    private lateinit var addresses: EditText
    private lateinit var port: EditText
    private lateinit var pins: EditText
    private lateinit var caPem: EditText
    private lateinit var strict: RadioButton
    private lateinit var opportunistic: RadioButton
    private lateinit var excludedButton: Button
    private lateinit var startOnBoot: CheckBox
    private lateinit var queryLog: CheckBox
    private val errors = mutableMapOf<SettingsField, TextView>()
    private val errorAnchors = mutableMapOf<SettingsField, View>()

    override fun onCreate(savedInstanceState: Bundle?) {
        Ui.applyTheme(this)
        super.onCreate(savedInstanceState)
        repository = SettingsRepository(this)
        catalogue = providers()
        loaded = repository.load()
        excluded = savedInstanceState?.getStringArrayList(STATE_EXCLUDED)?.toSet() ?: loaded.excludedApps
        buildForm()
        // After a configuration change the framework restores the edits
        // into these views (by ID) once onCreate returns.
        fill(loaded)
        if (savedInstanceState != null) updateExcludedLabel()
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        // Not a view: the picked apps are kept here until saved.
        outState.putStringArrayList(STATE_EXCLUDED, ArrayList(excluded.sorted()))
    }

    private fun errorLine(field: SettingsField, anchor: View): TextView =
        Ui.errorLine(this).also {
            errors[field] = it
            errorAnchors[field] = anchor
        }

    private fun buildForm() {
        val root = Ui.column(this)
        root.addView(Ui.title(this, "Settings"))
        root.addView(errorLine(SettingsField.OTHER, root))

        root.addView(Ui.heading(this, "Server"))
        serverGroup = RadioGroup(this).apply { id = ID_SERVER_GROUP }
        for (p in catalogue) {
            addServerButton(ServerChoice.Provider(p.id), Ui.twoLines(this, p.displayName, p.description))
        }
        addServerButton(ServerChoice.Custom, "Custom server")
        addServerButton(ServerChoice.NetworkResolvers, "The network's own resolvers (opportunistic mode only)")
        serverGroup.setOnCheckedChangeListener { _, _ -> updateVisibility() }
        root.addView(serverGroup)
        root.addView(errorLine(SettingsField.SERVER, serverGroup))

        configIdBlock = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        configId = Ui.input(this, "Configuration ID (from the provider's dashboard)").apply { id = ID_CONFIG_ID }
        configIdBlock.addView(configId)
        configIdBlock.addView(errorLine(SettingsField.CONFIG_ID, configId))
        root.addView(configIdBlock)

        customBlock = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        hostname = Ui.input(this, "Host name for TLS, e.g. dns.example.net").apply { id = ID_HOSTNAME }
        addresses = Ui.input(this, "Addresses: IP, IP:PORT or [IPv6]:PORT, comma separated", multiLine = true)
            .apply { id = ID_ADDRESSES }
        port = Ui.input(this, "Port (empty: 853)", number = true).apply { id = ID_PORT }
        pins = Ui.input(this, "SPKI pins (base64 SHA-256), optional, comma separated", multiLine = true)
            .apply { id = ID_PINS }
        caPem = Ui.input(this, "CA certificate (PEM), optional: a private CA or a self-signed server certificate", multiLine = true)
            .apply {
                id = ID_CA_PEM
                typeface = android.graphics.Typeface.MONOSPACE
                maxLines = 6
            }
        for ((label, input, field) in listOf(
            Triple("Host name", hostname, SettingsField.CUSTOM_HOSTNAME),
            Triple("Addresses", addresses, SettingsField.CUSTOM_ADDRESSES),
            Triple("Port", port, SettingsField.CUSTOM_PORT),
            Triple("Pins", pins, SettingsField.CUSTOM_PINS),
            Triple("CA certificate", caPem, SettingsField.CUSTOM_CA),
        )) {
            customBlock.addView(Ui.label(this, label))
            customBlock.addView(input)
            customBlock.addView(errorLine(field, input))
        }
        root.addView(customBlock)

        root.addView(Ui.heading(this, "Mode"))
        val modeGroup = RadioGroup(this).apply { id = ID_MODE_GROUP }
        strict = Ui.radio(this, Ui.twoLines(this, "Strict", "Authenticated TLS or no answer")).apply {
            id = ID_STRICT
        }
        opportunistic = Ui.radio(
            this,
            Ui.twoLines(this, "Opportunistic", "TLS when it works, else the network's resolvers in clear text"),
        ).apply { id = ID_OPPORTUNISTIC }
        modeGroup.addView(strict)
        modeGroup.addView(opportunistic)
        root.addView(modeGroup)
        root.addView(errorLine(SettingsField.MODE, modeGroup))

        root.addView(Ui.heading(this, "Apps"))
        excludedButton = Ui.button(this, "", filled = false) { pickExcludedApps() }
        root.addView(excludedButton)

        root.addView(Ui.heading(this, "Other"))
        startOnBoot = Ui.checkBox(this, "Start when the phone starts").apply { id = ID_START_ON_BOOT }
        queryLog = Ui.checkBox(this, "Keep a log of recent queries (in memory, last 200)").apply { id = ID_QUERY_LOG }
        root.addView(startOnBoot)
        root.addView(queryLog)

        root.addView(Ui.button(this, "Save") { save() })
        Ui.setScrollingContent(this, root)
    }

    private fun addServerButton(choice: ServerChoice, label: CharSequence) {
        val button = Ui.radio(this, label).apply {
            // Stable across re-creation, so the checked choice is restored.
            id = ID_SERVER_FIRST + serverButtons.size
        }
        serverButtons[button.id] = choice
        serverGroup.addView(button)
    }

    private fun fill(s: Settings) {
        val id = serverButtons.entries.firstOrNull { it.value == s.server }?.key
            ?: serverButtons.keys.first() // a provider that left the catalogue: the default
        serverGroup.check(id)
        configId.setText(s.configId)
        hostname.setText(s.custom.hostname)
        addresses.setText(s.custom.addresses)
        port.setText(s.custom.port)
        pins.setText(s.custom.pins)
        caPem.setText(s.custom.caPem)
        (if (s.mode == Mode.STRICT) strict else opportunistic).isChecked = true
        startOnBoot.isChecked = s.startOnBoot
        queryLog.isChecked = s.queryLog
        updateExcludedLabel()
        updateVisibility()
    }

    private fun selectedServer(): ServerChoice =
        serverButtons[serverGroup.checkedRadioButtonId] ?: loaded.server

    private fun updateVisibility() {
        val server = selectedServer()
        val needsId = server is ServerChoice.Provider && catalogue.any { it.id == server.id && it.needsConfigId }
        configIdBlock.visibility = if (needsId) View.VISIBLE else View.GONE
        customBlock.visibility = if (server == ServerChoice.Custom) View.VISIBLE else View.GONE
    }

    private fun form(): Settings = Settings(
        server = selectedServer(),
        configId = configId.text.toString(),
        custom = CustomServerInput(
            hostname = hostname.text.toString(),
            addresses = addresses.text.toString(),
            port = port.text.toString(),
            pins = pins.text.toString(),
            caPem = caPem.text.toString(),
        ),
        mode = if (opportunistic.isChecked) Mode.OPPORTUNISTIC else Mode.STRICT,
        excludedApps = excluded,
        startOnBoot = startOnBoot.isChecked,
        queryLog = queryLog.isChecked,
    )

    private fun show(error: FieldError?) {
        for ((field, line) in errors) Ui.showError(line, if (error?.field == field) error.message else null)
        val anchor = error?.let { errorAnchors[it.field] } ?: return
        anchor.requestFocus()
        anchor.parent?.requestChildFocus(anchor, anchor)
    }

    private fun save() {
        val settings = form()
        val error = EngineConfigs.validate(settings)
        show(error)
        if (error != null) return
        repository.save(settings)
        if (StatusHub.DEFAULT.status.value.service.isOn) DotVpnService.applySettings(this)
        Toast.makeText(this, "Saved", Toast.LENGTH_SHORT).show()
        finish()
    }

    private fun updateExcludedLabel() {
        excludedButton.text = if (excluded.isEmpty()) "Excluded apps: none" else "Excluded apps: ${excluded.size}"
    }

    /** Launchable apps (the manifest's <queries> makes them visible), by label. */
    private fun launchableApps(): List<Pair<String, String>> {
        val intent = Intent(Intent.ACTION_MAIN).addCategory(Intent.CATEGORY_LAUNCHER)
        val pm = packageManager
        val infos: List<ResolveInfo> = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            pm.queryIntentActivities(intent, PackageManager.ResolveInfoFlags.of(0))
        } else {
            @Suppress("DEPRECATION")
            pm.queryIntentActivities(intent, 0)
        }
        return infos
            .map { it.activityInfo.packageName to it.loadLabel(pm).toString() }
            .filter { it.first != packageName }
            .distinctBy { it.first }
            .sortedBy { it.second.lowercase() }
    }

    private fun pickExcludedApps() {
        val apps = launchableApps()
        // Keep exclusions of apps not listed (uninstalled or hidden) as they are.
        val chosen = excluded.toMutableSet()
        val checked = BooleanArray(apps.size) { apps[it].first in chosen }
        AlertDialog.Builder(this)
            .setTitle("Apps that bypass dotcore")
            .setMultiChoiceItems(apps.map { it.second }.toTypedArray(), checked) { _, which, isChecked ->
                if (isChecked) chosen += apps[which].first else chosen -= apps[which].first
            }
            .setPositiveButton("OK") { _, _ ->
                excluded = chosen.toSet()
                updateExcludedLabel()
            }
            .setNegativeButton("Cancel", null)
            .show()
    }

    private companion object {
        const val STATE_EXCLUDED = "excluded_apps"

        // Fixed view IDs (the app has no R class): the framework saves and
        // restores a view's state (typed text, checked buttons) by its ID,
        // so unsaved edits survive rotation. Outside aapt's 0x7f range.
        const val ID_SERVER_GROUP = 0x0d070001
        const val ID_CONFIG_ID = 0x0d070002
        const val ID_HOSTNAME = 0x0d070003
        const val ID_ADDRESSES = 0x0d070004
        const val ID_PORT = 0x0d070005
        const val ID_PINS = 0x0d070006
        const val ID_MODE_GROUP = 0x0d070007
        const val ID_STRICT = 0x0d070008
        const val ID_OPPORTUNISTIC = 0x0d070009
        const val ID_START_ON_BOOT = 0x0d07000a
        const val ID_QUERY_LOG = 0x0d07000b
        const val ID_CA_PEM = 0x0d07000c
        const val ID_SERVER_FIRST = 0x0d071000
    }
}
