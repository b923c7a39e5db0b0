package app.dotcore

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.net.VpnService
import android.util.Log

/**
 * Starts the VPN after boot when the user chose "Start on boot". (Users of
 * Android's always-on VPN do not need it: the system starts the service
 * itself, and a second start is ignored.)
 */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Intent.ACTION_BOOT_COMPLETED) return
        if (!SettingsRepository(context).load().startOnBoot) return
        if (VpnService.prepare(context) != null) {
            // The VPN permission was revoked (or another app holds always-on).
            Log.w("dotcore", "start on boot: no VPN permission")
            Notifications.alert(context, "dotcore did not start", "Open dotcore and turn it on to allow the VPN again.")
            return
        }
        // BOOT_COMPLETED may start foreground services of this type (Android
        // 15 only forbids dataSync, camera, media and phone-call types).
        DotVpnService.start(context)
    }
}
