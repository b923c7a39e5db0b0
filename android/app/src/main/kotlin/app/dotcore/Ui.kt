package app.dotcore

import android.app.Activity
import android.content.Context
import android.content.res.ColorStateList
import android.content.res.Configuration
import android.graphics.Color
import android.graphics.Typeface
import android.graphics.drawable.ColorDrawable
import android.graphics.drawable.GradientDrawable
import android.os.Build
import android.text.InputType
import android.text.SpannableStringBuilder
import android.text.Spanned
import android.text.style.ForegroundColorSpan
import android.text.style.RelativeSizeSpan
import android.util.TypedValue
import android.view.View
import android.view.ViewGroup
import android.view.WindowInsets
import android.view.WindowInsetsController
import android.widget.Button
import android.widget.CheckBox
import android.widget.CompoundButton
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.ScrollView
import android.widget.Switch
import android.widget.TextView

/**
 * Views built in code (no XML layouts, no generated R class): the helpers
 * both screens use, and every colour they draw with ([Palette]), so that
 * day and night differ in one place.
 */
internal object Ui {
    /**
     * The screens' colours (Material 3's baseline scheme, plus an amber for
     * warnings). Each text colour keeps a contrast of at least 4.5:1 (WCAG
     * AA) against the background it is drawn on; the Robolectric suite
     * checks the rendered views in both modes.
     */
    data class Palette(
        val background: Int,
        val onBackground: Int,
        /** Labels, hints, unchecked controls. */
        val onBackgroundVariant: Int,
        val primary: Int,
        val onPrimary: Int,
        val outline: Int,
        val error: Int,
        val warningContainer: Int,
        val onWarningContainer: Int,
        val dark: Boolean,
    )

    val LIGHT = Palette(
        background = Color.rgb(0xFE, 0xF7, 0xFF),
        onBackground = Color.rgb(0x1D, 0x1B, 0x20),
        onBackgroundVariant = Color.rgb(0x49, 0x45, 0x4F),
        primary = Color.rgb(0x67, 0x50, 0xA4),
        onPrimary = Color.WHITE,
        outline = Color.rgb(0x79, 0x74, 0x7E),
        error = Color.rgb(0xB3, 0x26, 0x1E),
        warningContainer = Color.rgb(0xFF, 0xDD, 0xB3),
        onWarningContainer = Color.rgb(0x29, 0x18, 0x00),
        dark = false,
    )

    val DARK = Palette(
        background = Color.rgb(0x14, 0x12, 0x18),
        onBackground = Color.rgb(0xE6, 0xE0, 0xE9),
        onBackgroundVariant = Color.rgb(0xCA, 0xC4, 0xD0),
        primary = Color.rgb(0xD0, 0xBC, 0xFF),
        onPrimary = Color.rgb(0x38, 0x1E, 0x72),
        outline = Color.rgb(0x93, 0x8F, 0x99),
        error = Color.rgb(0xF2, 0xB8, 0xB5),
        warningContainer = Color.rgb(0x62, 0x40, 0x00),
        onWarningContainer = Color.rgb(0xFF, 0xDD, 0xB3),
        dark = true,
    )

    /** Follows the system's dark theme (the activity is re-created when it changes). */
    fun palette(context: Context): Palette {
        val night = context.resources.configuration.uiMode and Configuration.UI_MODE_NIGHT_MASK
        return if (night == Configuration.UI_MODE_NIGHT_YES) DARK else LIGHT
    }

    /**
     * The framework theme matching [palette], for what is not drawn here
     * (dialogs, the text cursor, ripples). Before the activity's first view.
     */
    fun applyTheme(activity: Activity) {
        activity.setTheme(
            if (palette(activity).dark) {
                android.R.style.Theme_DeviceDefault_NoActionBar
            } else {
                android.R.style.Theme_DeviceDefault_Light_NoActionBar
            },
        )
    }

    fun dp(context: Context, value: Int): Int =
        TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, value.toFloat(), context.resources.displayMetrics).toInt()

    fun column(context: Context): LinearLayout = LinearLayout(context).apply {
        orientation = LinearLayout.VERTICAL
        val pad = dp(context, 20)
        setPadding(pad, dp(context, 16), pad, dp(context, 24))
    }

    fun text(context: Context, value: CharSequence = "", sizeSp: Float = 16f, bold: Boolean = false): TextView =
        TextView(context).apply {
            text = value
            setTextSize(TypedValue.COMPLEX_UNIT_SP, sizeSp)
            setTextColor(palette(context).onBackground)
            if (bold) setTypeface(typeface, Typeface.BOLD)
            setLineSpacing(0f, 1.15f)
            setPadding(0, dp(context, 4), 0, dp(context, 4))
        }

    /** The screen's name, at the top. */
    fun title(context: Context, value: CharSequence): TextView = text(context, value, 28f).apply {
        setPadding(0, dp(context, 8), 0, dp(context, 12))
    }

    fun heading(context: Context, value: CharSequence): TextView = text(context, value, 18f, bold = true).apply {
        setTextColor(palette(context).primary)
        setPadding(0, dp(context, 24), 0, dp(context, 6))
    }

    /** A small label above an input. */
    fun label(context: Context, value: CharSequence): TextView = text(context, value, 14f, bold = true).apply {
        setTextColor(palette(context).onBackgroundVariant)
        setPadding(0, dp(context, 12), 0, 0)
    }

    /** A hidden error line under an input, shown with [showError]. */
    fun errorLine(context: Context): TextView = text(context, "", 14f).apply {
        setTextColor(palette(context).error)
        visibility = View.GONE
    }

    fun showError(line: TextView, message: String?) {
        line.text = message.orEmpty()
        line.visibility = if (message.isNullOrEmpty()) View.GONE else View.VISIBLE
    }

    /** Text on a tinted, rounded panel: the warnings of the status screen. */
    fun warningCard(context: Context): TextView = text(context, "", 15f).apply {
        val p = palette(context)
        setTextColor(p.onWarningContainer)
        background = GradientDrawable().apply {
            setColor(p.warningContainer)
            cornerRadius = dp(context, 12).toFloat()
        }
        val pad = dp(context, 16)
        setPadding(pad, dp(context, 12), pad, dp(context, 12))
        layoutParams = LinearLayout.LayoutParams(
            LinearLayout.LayoutParams.MATCH_PARENT,
            LinearLayout.LayoutParams.WRAP_CONTENT,
        ).apply { topMargin = dp(context, 12) }
    }

    private fun checkable(context: Context): ColorStateList {
        val p = palette(context)
        return ColorStateList(
            arrayOf(intArrayOf(android.R.attr.state_checked), intArrayOf()),
            intArrayOf(p.primary, p.onBackgroundVariant),
        )
    }

    private fun <T : CompoundButton> T.styled(label: CharSequence, sizeSp: Float = 16f): T = apply {
        text = label
        setTextSize(TypedValue.COMPLEX_UNIT_SP, sizeSp)
        setTextColor(palette(context).onBackground)
        minHeight = dp(context, 48)
        setPadding(paddingLeft + dp(context, 8), dp(context, 6), paddingRight, dp(context, 6))
    }

    fun radio(context: Context, label: CharSequence): RadioButton = RadioButton(context).styled(label).apply {
        buttonTintList = checkable(context)
    }

    fun checkBox(context: Context, label: CharSequence): CheckBox = CheckBox(context).styled(label).apply {
        buttonTintList = checkable(context)
    }

    fun switch(context: Context, label: CharSequence): Switch = Switch(context).styled(label, 20f).apply {
        val p = palette(context)
        val states = arrayOf(intArrayOf(android.R.attr.state_checked), intArrayOf())
        thumbTintList = ColorStateList(states, intArrayOf(p.primary, p.outline))
        trackTintList = ColorStateList(states, intArrayOf(p.primary, p.outline))
    }

    /** A filled button, or a tonal one (primary text on a tint of it) for secondary actions. */
    fun button(context: Context, label: CharSequence, filled: Boolean = true, onClick: () -> Unit): Button =
        Button(context).apply {
            val p = palette(context)
            text = label
            isAllCaps = false
            setTextSize(TypedValue.COMPLEX_UNIT_SP, 16f)
            setTextColor(if (filled) p.onPrimary else p.primary)
            backgroundTintList = ColorStateList.valueOf(if (filled) p.primary else blend(p.primary, p.background, 0.16f))
            setOnClickListener { onClick() }
            layoutParams = LinearLayout.LayoutParams(
                LinearLayout.LayoutParams.WRAP_CONTENT,
                LinearLayout.LayoutParams.WRAP_CONTENT,
            ).apply { topMargin = dp(context, 16) }
        }

    /** [p] of [over], by [amount] (0..1), opaque. */
    private fun blend(p: Int, over: Int, amount: Float): Int {
        fun mix(a: Int, b: Int) = (a * amount + b * (1 - amount)).toInt()
        return Color.rgb(mix(Color.red(p), Color.red(over)), mix(Color.green(p), Color.green(over)), mix(Color.blue(p), Color.blue(over)))
    }

    /** A choice's name with its explanation below, smaller and quieter. */
    fun twoLines(context: Context, title: CharSequence, detail: CharSequence): CharSequence =
        SpannableStringBuilder(title).append('\n').apply {
            val start = length
            append(detail)
            setSpan(RelativeSizeSpan(0.875f), start, length, Spanned.SPAN_EXCLUSIVE_EXCLUSIVE)
            setSpan(ForegroundColorSpan(palette(context).onBackgroundVariant), start, length, Spanned.SPAN_EXCLUSIVE_EXCLUSIVE)
        }

    fun input(context: Context, hint: String, multiLine: Boolean = false, number: Boolean = false): EditText =
        EditText(context).apply {
            val p = palette(context)
            this.hint = hint
            setTextColor(p.onBackground)
            setHintTextColor(p.onBackgroundVariant)
            backgroundTintList = ColorStateList(
                arrayOf(intArrayOf(android.R.attr.state_focused), intArrayOf()),
                intArrayOf(p.primary, p.onBackgroundVariant),
            )
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
     * Makes [content] the activity's scrolling content on the palette's
     * background. From Android 15 apps targeting SDK 35+ are drawn edge to
     * edge: pad by the system bars, display cutout and keyboard.
     */
    fun setScrollingContent(activity: Activity, content: View) {
        val p = palette(activity)
        val scroll = ScrollView(activity).apply {
            isFillViewport = true
            addView(content, ViewGroup.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT))
        }
        activity.window.setBackgroundDrawable(ColorDrawable(p.background))
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.VANILLA_ICE_CREAM) {
            scroll.setOnApplyWindowInsetsListener { v, insets ->
                val bars = insets.getInsets(
                    WindowInsets.Type.systemBars() or WindowInsets.Type.displayCutout() or WindowInsets.Type.ime(),
                )
                v.setPadding(bars.left, bars.top, bars.right, bars.bottom)
                WindowInsets.CONSUMED
            }
        } else {
            legacyBarColors(activity, p)
        }
        activity.setContentView(scroll)
        systemBarIcons(activity, p)
    }

    /** Before Android 15 the bars have a colour of their own: the background's. */
    @Suppress("DEPRECATION")
    private fun legacyBarColors(activity: Activity, p: Palette) {
        activity.window.statusBarColor = p.background
        activity.window.navigationBarColor = p.background
    }

    /** Dark status and navigation bar icons on the light background, light ones on the dark. */
    private fun systemBarIcons(activity: Activity, p: Palette) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            val light = WindowInsetsController.APPEARANCE_LIGHT_STATUS_BARS or
                WindowInsetsController.APPEARANCE_LIGHT_NAVIGATION_BARS
            activity.window.insetsController?.setSystemBarsAppearance(if (p.dark) 0 else light, light)
        } else {
            legacySystemBarIcons(activity, p)
        }
    }

    @Suppress("DEPRECATION")
    private fun legacySystemBarIcons(activity: Activity, p: Palette) {
        val flags = View.SYSTEM_UI_FLAG_LIGHT_STATUS_BAR or View.SYSTEM_UI_FLAG_LIGHT_NAVIGATION_BAR
        val decor = activity.window.decorView
        decor.systemUiVisibility = if (p.dark) decor.systemUiVisibility and flags.inv() else decor.systemUiVisibility or flags
    }
}
