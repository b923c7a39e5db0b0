package app.dotcore.ffi.test

import java.io.ByteArrayOutputStream

/** Just enough of RFC 1035 to build queries and read answer headers by hand. */
object DnsWire {
    const val A = 1
    const val TXT = 16
    const val AAAA = 28
    const val NOERROR = 0
    const val SERVFAIL = 2
    const val NXDOMAIN = 3

    fun query(id: Int, name: String, qtype: Int): ByteArray {
        val out = ByteArrayOutputStream()
        fun u16(v: Int) { out.write((v shr 8) and 0xff); out.write(v and 0xff) }
        u16(id)
        u16(0x0100) // RD
        u16(1); u16(0); u16(0); u16(0)
        for (label in name.trimEnd('.').split('.')) {
            val bytes = label.toByteArray(Charsets.US_ASCII)
            out.write(bytes.size)
            out.write(bytes)
        }
        out.write(0)
        u16(qtype)
        u16(1) // IN
        return out.toByteArray()
    }

    private fun u16(msg: ByteArray, at: Int) = ((msg[at].toInt() and 0xff) shl 8) or (msg[at + 1].toInt() and 0xff)

    fun id(msg: ByteArray) = u16(msg, 0)
    fun isResponse(msg: ByteArray) = msg.size >= 12 && (msg[2].toInt() and 0x80) != 0
    fun rcode(msg: ByteArray) = msg[3].toInt() and 0x0f
    fun answerCount(msg: ByteArray) = u16(msg, 6)
}

/**
 * IPv4/UDP packets as the kernel writes them into a TUN device (RFC 791,
 * RFC 768), with real checksums (RFC 1071).
 */
object Ipv4Udp {
    class Datagram(val src: ByteArray, val dst: ByteArray, val srcPort: Int, val dstPort: Int, val payload: ByteArray)

    private fun put16(p: ByteArray, at: Int, v: Int) {
        p[at] = (v shr 8).toByte()
        p[at + 1] = v.toByte()
    }

    private fun get16(p: ByteArray, at: Int) = ((p[at].toInt() and 0xff) shl 8) or (p[at + 1].toInt() and 0xff)

    fun checksum(data: ByteArray): Int {
        var sum = 0L
        var i = 0
        while (i + 1 < data.size) {
            sum += get16(data, i)
            i += 2
        }
        if (i < data.size) sum += (data[i].toInt() and 0xff) shl 8
        while (sum shr 16 != 0L) sum = (sum and 0xffff) + (sum shr 16)
        return sum.inv().toInt() and 0xffff
    }

    fun packet(src: ByteArray, dst: ByteArray, srcPort: Int, dstPort: Int, payload: ByteArray): ByteArray {
        val udpLen = 8 + payload.size
        val p = ByteArray(20 + udpLen)
        p[0] = 0x45 // version 4, 5-word header
        put16(p, 2, p.size)
        put16(p, 4, 0x2a2a) // identification
        put16(p, 6, 0x4000) // don't fragment
        p[8] = 64 // TTL
        p[9] = 17 // UDP
        src.copyInto(p, 12)
        dst.copyInto(p, 16)
        put16(p, 10, checksum(p.copyOfRange(0, 20)))
        put16(p, 20, srcPort)
        put16(p, 22, dstPort)
        put16(p, 24, udpLen)
        payload.copyInto(p, 28)
        val pseudo = ByteArray(12 + udpLen)
        src.copyInto(pseudo, 0)
        dst.copyInto(pseudo, 4)
        pseudo[9] = 17
        put16(pseudo, 10, udpLen)
        p.copyInto(pseudo, 12, 20, p.size)
        val c = checksum(pseudo)
        put16(p, 26, if (c == 0) 0xffff else c)
        return p
    }

    /** The UDP datagram in an IPv4 packet, or null if it is something else. */
    fun parse(p: ByteArray): Datagram? {
        if (p.size < 28 || (p[0].toInt() shr 4) != 4 || p[9].toInt() != 17) return null
        val ihl = (p[0].toInt() and 0x0f) * 4
        val total = get16(p, 2)
        if (total > p.size || checksum(p.copyOfRange(0, ihl)) != 0) return null
        val udpLen = get16(p, ihl + 4)
        if (ihl + udpLen > total) return null
        return Datagram(
            src = p.copyOfRange(12, 16),
            dst = p.copyOfRange(16, 20),
            srcPort = get16(p, ihl),
            dstPort = get16(p, ihl + 2),
            payload = p.copyOfRange(ihl + 8, ihl + udpLen),
        )
    }
}
