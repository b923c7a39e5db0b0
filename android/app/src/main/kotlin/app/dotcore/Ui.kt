package app.dotcore

import android.app.Activity
import android.content.Context
import android.graphics.Color
import android.graphics.Typeface
import android.os.Build
import android.text.InputType
import android.util.TypedValue
import android.view.View
import android.view.ViewGroup
import android.view.WindowInsets
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView

/**
 * Views built in code (no XML layouts, no generated R class): the few
 * helpers both screens use.
 */
internal object Ui {
    val ERROR_COLOR: Int = Color.rgb(0xB3, 0x26, 0x1E)
    val WARNING_COLOR: Int = Color.rgb(0x8A, 0x52, 0x00)

    fun dp(context: Context, value: Int): Int =
        TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, value.toFloat(), context.resources.displayMetrics).toInt()

    fun column(context: Context): LinearLayout = LinearLayout(context).apply {
        orientation = LinearLayout.VERTICAL
        val pad = dp(context, 16)
        setPadding(pad, pad, pad, pad)
    }

    fun text(context: Context, value: CharSequence = "", sizeSp: Float = 16f, bold: Boolean = false): TextView =
        TextView(context).apply {
            text = value
            setTextSize(TypedValue.COMPLEX_UNIT_SP, sizeSp)
            if (bold) setTypeface(typeface, Typeface.BOLD)
            setPadding(0, dp(context, 4), 0, dp(context, 4))
        }

    fun heading(context: Context, value: CharSequence): TextView = text(context, value, 20f, bold = true).apply {
        setPadding(0, dp(context, 16), 0, dp(context, 4))
    }

    /** A hidden red line under an input, shown with [showError]. */
    fun errorLine(context: Context): TextView = text(context, "", 14f).apply {
        setTextColor(ERROR_COLOR)
        visibility = View.GONE
    }

    fun showError(line: TextView, message: String?) {
        line.text = message.orEmpty()
        line.visibility = if (message.isNullOrEmpty()) View.GONE else View.VISIBLE
    }

    fun input(context: Context, hint: String, multiLine: Boolean = false, number: Boolean = false): EditText =
        EditText(context).apply {
            this.hint = hint
            inputType = when {
                number -> InputType.TYPE_CLASS_NUMBER
                multiLine -> InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE or
                    InputType.TYPE_TEXT_FLAG_NO_SUGGESTIONS
                else -> InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI or
                    InputType.TYPE_TEXT_FLAG_NO_SUGGESTIONS
            }
            if (!multiLine) isSingleLine = true
        }

    /**
     * Makes [content] the activity's scrolling content. From Android 15 apps
     * targeting SDK 35+ are drawn edge to edge: pad by the system bars,
     * display cutout and keyboard.
     */
    fun setScrollingContent(activity: Activity, content: View) {
        val scroll = ScrollView(activity).apply {
            isFillViewport = true
            addView(content, ViewGroup.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT))
        }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.VANILLA_ICE_CREAM) {
            scroll.setOnApplyWindowInsetsListener { v, insets ->
                val bars = insets.getInsets(
                    WindowInsets.Type.systemBars() or WindowInsets.Type.displayCutout() or WindowInsets.Type.ime(),
                )
                v.setPadding(bars.left, bars.top, bars.right, bars.bottom)
                WindowInsets.CONSUMED
            }
        }
        activity.setContentView(scroll)
    }
}
