package app.dotcore

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import android.graphics.drawable.Icon
import app.dotcore.logic.NotificationText

/** The ongoing notification of the service and the occasional alert. */
object Notifications {
    const val ID_ONGOING = 1
    private const val ID_ALERT = 2
    private const val CHANNEL_STATUS = "status"
    private const val CHANNEL_ALERTS = "alerts"

    fun createChannels(context: Context) {
        val nm = context.getSystemService(NotificationManager::class.java)
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_STATUS, "Status", NotificationManager.IMPORTANCE_LOW).apply {
                description = "Shown while dotcore is on: provider, mode, queries answered"
                setShowBadge(false)
            },
        )
        nm.createNotificationChannel(
            NotificationChannel(CHANNEL_ALERTS, "Problems", NotificationManager.IMPORTANCE_DEFAULT).apply {
                description = "dotcore stopped or could not start"
            },
        )
    }

    private fun openApp(context: Context): PendingIntent = PendingIntent.getActivity(
        context,
        0,
        Intent(context, MainActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK),
        PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
    )

    /** The foreground notification: [text] from StatusTexts.notification, and a stop action. */
    fun ongoing(context: Context, text: NotificationText): Notification {
        val stop = PendingIntent.getService(
            context,
            1,
            DotVpnService.intent(context, DotVpnService.ACTION_STOP),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
        return Notification.Builder(context, CHANNEL_STATUS)
            .setSmallIcon(android.R.drawable.ic_lock_lock)
            .setContentTitle(text.title)
            .setContentText(text.text)
            .setStyle(Notification.BigTextStyle().bigText(text.text))
            .setContentIntent(openApp(context))
            .setOngoing(true)
            .setOnlyAlertOnce(true)
            .setShowWhen(false)
            .setCategory(Notification.CATEGORY_SERVICE)
            .setVisibility(Notification.VISIBILITY_PUBLIC)
            .addAction(
                Notification.Action.Builder(
                    Icon.createWithResource(context, android.R.drawable.ic_menu_close_clear_cancel),
                    "Stop",
                    stop,
                ).build(),
            )
            .build()
    }

    fun update(context: Context, text: NotificationText) {
        context.getSystemService(NotificationManager::class.java).notify(ID_ONGOING, ongoing(context, text))
    }

    /** A dismissible notification about a problem (stopped with an error, boot start impossible). */
    fun alert(context: Context, title: String, text: String) {
        val n = Notification.Builder(context, CHANNEL_ALERTS)
            .setSmallIcon(android.R.drawable.stat_notify_error)
            .setContentTitle(title)
            .setContentText(text)
            .setStyle(Notification.BigTextStyle().bigText(text))
            .setContentIntent(openApp(context))
            .setAutoCancel(true)
            .build()
        context.getSystemService(NotificationManager::class.java).notify(ID_ALERT, n)
    }
}
