package app.dotcore.ffi.test

import java.io.File
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

/**
 * The local unbound DoT server the Rust tests use, run as a process
 * (`unbound-fixture` from the dotcore-tests crate). It prints one line of
 * JSON describing itself and serves until its stdin is closed.
 */
class UnboundFixture private constructor(
    private val process: Process,
    private val info: Map<String, String>,
) : AutoCloseable {
    /** DoT endpoint, `127.0.0.1:PORT`. */
    val dot: String get() = info.getValue("dot")
    /** Plain DNS endpoint (UDP and TCP), `127.0.0.1:PORT`. */
    val plain: String get() = info.getValue("plain")
    /** Name on the server certificate. */
    val dotName: String get() = info.getValue("dot_name")
    /** The test CA certificate, PEM. */
    val caPem: String get() = File(info.getValue("ca_pem_path")).readText()
    /** RFC 7469 pin of the certificate the server presents. */
    val leafPin: String get() = info.getValue("leaf_pin")
    /** RFC 7469 pin of the CA (does not match: the server sends no chain). */
    val caPin: String get() = info.getValue("ca_pin")
    val aName: String get() = info.getValue("a_name")
    val aV4: String get() = info.getValue("a_v4")
    val aV6: String get() = info.getValue("a_v6")
    val aTtl: Long get() = info.getValue("a_ttl").toLong()
    val txtName: String get() = info.getValue("txt_name")
    val txtValue: String get() = info.getValue("txt_value")
    val nxName: String get() = info.getValue("nx_name")
    /** Every name below it answers A [benchV4]. */
    val benchZone: String get() = info.getValue("bench_zone")
    val benchV4: String get() = info.getValue("bench_v4")

    override fun close() {
        runCatching { process.outputStream.close() }
        if (!process.waitFor(15, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS)
        }
    }

    companion object {
        fun start(): UnboundFixture {
            val path = System.getProperty("dotcore.fixture")
                ?: error("system property dotcore.fixture is not set (run scripts/test-kotlin.sh)")
            check(File(path).canExecute()) {
                "$path is missing: build it with `cargo build -p dotcore-tests --bin unbound-fixture` " +
                    "(scripts/test-kotlin.sh does)"
            }
            val process = ProcessBuilder(path)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            val reader = process.inputStream.bufferedReader()
            val line = try {
                CompletableFuture.supplyAsync { reader.readLine() }.get(60, TimeUnit.SECONDS)
            } catch (e: Exception) {
                process.destroyForcibly()
                throw IllegalStateException("unbound-fixture did not report within 60 s", e)
            }
            if (line == null) {
                val rc = if (process.waitFor(5, TimeUnit.SECONDS)) process.exitValue() else -1
                error("unbound-fixture exited (status $rc) without starting unbound; see its stderr above")
            }
            return UnboundFixture(process, parseFlatJson(line))
        }

        /** The fixture's one-line, flat JSON object of strings and integers. */
        internal fun parseFlatJson(line: String): Map<String, String> {
            val pair = Regex("\"(\\w+)\":(?:\"((?:[^\"\\\\]|\\\\.)*)\"|(-?\\d+))")
            val map = pair.findAll(line).associate { m ->
                val (key, str, num) = m.destructured
                key to if (num.isNotEmpty()) num else unescape(str)
            }
            check(map.containsKey("dot") && map.containsKey("leaf_pin")) { "unexpected fixture output: $line" }
            return map
        }

        private fun unescape(s: String): String {
            val out = StringBuilder()
            var i = 0
            while (i < s.length) {
                val c = s[i]
                if (c == '\\' && i + 1 < s.length) {
                    when (val e = s[i + 1]) {
                        'u' -> { out.append(s.substring(i + 2, i + 6).toInt(16).toChar()); i += 6; continue }
                        else -> out.append(e)
                    }
                    i += 2
                } else {
                    out.append(c)
                    i += 1
                }
            }
            return out.toString()
        }
    }
}
