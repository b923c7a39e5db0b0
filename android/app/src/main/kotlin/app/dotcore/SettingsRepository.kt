package app.dotcore

import android.content.Context
import app.dotcore.logic.Settings
import app.dotcore.logic.SettingsCodec

/** [Settings] in SharedPreferences (the mapping is [SettingsCodec]'s). */
class SettingsRepository(context: Context) {
    private val prefs = context.applicationContext.getSharedPreferences(FILE, Context.MODE_PRIVATE)

    fun load(): Settings = SettingsCodec.decode(prefs.all)

    /**
     * apply(): the in-memory preferences change at once (the service, in
     * this process, reads them right after) and the disk write happens off
     * the main thread.
     */
    fun save(settings: Settings) {
        val editor = prefs.edit().clear()
        for ((key, value) in SettingsCodec.encode(settings)) {
            when (value) {
                is String -> editor.putString(key, value)
                is Boolean -> editor.putBoolean(key, value)
                is Int -> editor.putInt(key, value)
                is Set<*> -> editor.putStringSet(key, value.filterIsInstance<String>().toSet())
                else -> error("unsupported preference type for $key")
            }
        }
        editor.apply()
    }

    private companion object {
        const val FILE = "settings"
    }
}
