package app.dotcore.test

import android.app.Activity
import android.app.Instrumentation
import android.os.Bundle
import android.util.Log
import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.Request
import org.junit.runner.Result
import org.junit.runner.manipulation.Filter
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener

/**
 * Runs the instrumented JUnit 4 tests with the Android framework alone
 * (no androidx.test, which lives on Google's Maven only).
 *
 * It speaks the instrumentation status protocol that `am instrument -r`,
 * ddmlib and so `./gradlew connectedAndroidTest` parse (the same keys and
 * codes as AndroidJUnitRunner): per test a START status (1) with `class`,
 * `test`, `current` and `numtests`, then OK (0), FAILURE (-2) with `stack`,
 * IGNORED (-3) or ASSUMPTION_FAILURE (-4); and a final result bundle with
 * the summary in `stream`.
 *
 * Arguments (`-e`): `class` = `a.B` or `a.B#method`, comma separated.
 */
class DotTestRunner : Instrumentation() {
    private var arguments: Bundle = Bundle()

    override fun onCreate(arguments: Bundle?) {
        super.onCreate(arguments)
        this.arguments = arguments ?: Bundle()
        instance = this
        start()
    }

    override fun onStart() {
        super.onStart()
        val request = request()
        val total = request.runner.testCount()
        val core = JUnitCore()
        core.addListener(Reporter(total))
        val result: Result = try {
            core.run(request)
        } catch (t: Throwable) {
            Log.e(TAG, "test run crashed", t)
            val bundle = Bundle()
            bundle.putString(REPORT_KEY_STREAMRESULT, "Test run crashed: ${Log.getStackTraceString(t)}")
            finish(Activity.RESULT_CANCELED, bundle)
            return
        }
        val summary = StringBuilder()
            .append("\nTime: ").append(result.runTime / 1000.0).append('\n')
        for (f in result.failures) summary.append('\n').append(f.testHeader).append('\n').append(f.trace)
        summary.append(
            if (result.wasSuccessful()) {
                "\nOK (${result.runCount} tests)\n"
            } else {
                "\nFAILURES!!!\nTests run: ${result.runCount},  Failures: ${result.failureCount}\n"
            },
        )
        val bundle = Bundle()
        bundle.putString(REPORT_KEY_STREAMRESULT, summary.toString())
        // As AndroidJUnitRunner: RESULT_OK; failures were reported per test.
        finish(Activity.RESULT_OK, bundle)
    }

    private fun request(): Request {
        val spec = arguments.getString("class")
        if (spec.isNullOrBlank()) return Request.classes(*ALL_TESTS.toTypedArray())
        val wanted = spec.split(',').map(String::trim).filter(String::isNotEmpty)
        val classes = wanted.map { Class.forName(it.substringBefore('#')) }.distinct()
        val methods = wanted.filter { '#' in it }.toSet()
        val request = Request.classes(*classes.toTypedArray())
        if (methods.isEmpty()) return request
        return request.filterWith(
            object : Filter() {
                override fun shouldRun(d: Description): Boolean =
                    d.methodName == null || "${d.className}#${d.methodName}" in methods ||
                        wanted.contains(d.className)

                override fun describe() = "methods $methods"
            },
        )
    }

    private inner class Reporter(private val total: Int) : RunListener() {
        private var current = 0
        private var status = OK
        private var stack: String? = null

        private fun bundle(d: Description) = Bundle().apply {
            putString(REPORT_KEY_IDENTIFIER, ID)
            putString("class", d.className)
            putString("test", d.methodName)
            putInt("numtests", total)
            putInt("current", current)
        }

        override fun testStarted(description: Description) {
            current++
            status = OK
            stack = null
            sendStatus(START, bundle(description).apply { putString(REPORT_KEY_STREAMRESULT, "\n${description.className}:") })
        }

        override fun testFailure(failure: Failure) {
            status = FAILURE
            stack = failure.trace
        }

        override fun testAssumptionFailure(failure: Failure) {
            status = ASSUMPTION_FAILURE
            stack = failure.trace
        }

        override fun testFinished(description: Description) {
            val b = bundle(description)
            stack?.let {
                b.putString("stack", it)
                b.putString(REPORT_KEY_STREAMRESULT, "\nError in ${description.methodName}:\n$it")
            }
            sendStatus(status, b)
        }

        override fun testIgnored(description: Description) {
            current++
            sendStatus(START, bundle(description))
            sendStatus(IGNORED, bundle(description))
        }
    }

    companion object {
        private const val TAG = "DotTestRunner"
        private const val ID = "DotTestRunner"
        private const val START = 1
        private const val OK = 0
        private const val FAILURE = -2
        private const val IGNORED = -3
        private const val ASSUMPTION_FAILURE = -4

        /** The suites, in order (there is no class-path scanning here). */
        val ALL_TESTS: List<Class<*>> = listOf(VpnEndToEndTest::class.java)

        /** The running instrumentation, for the tests. */
        @Volatile
        lateinit var instance: DotTestRunner
            private set
    }
}
