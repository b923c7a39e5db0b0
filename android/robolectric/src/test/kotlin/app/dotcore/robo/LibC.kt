package app.dotcore.robo

import com.sun.jna.Library
import com.sun.jna.Native

/**
 * The libc calls that stand in for the kernel side of a TUN device: a
 * SOCK_SEQPACKET socketpair keeps packet boundaries as a TUN descriptor
 * does, so the engine reads and writes whole IP packets on its end.
 */
interface LibC : Library {
    fun socketpair(domain: Int, type: Int, protocol: Int, sv: IntArray): Int
    fun open(path: String, flags: Int): Int
    fun dup(fd: Int): Int
    fun close(fd: Int): Int
    fun fcntl(fd: Int, cmd: Int, arg: Int): Int
    fun read(fd: Int, buf: ByteArray, count: Long): Long
    fun write(fd: Int, buf: ByteArray, count: Long): Long
    fun poll(fds: ShortArray, nfds: Long, timeout: Int): Int

    companion object {
        val INSTANCE: LibC = Native.load("c", LibC::class.java)
        const val AF_UNIX = 1
        const val SOCK_SEQPACKET = 5
        const val F_GETFD = 1
        const val F_GETFL = 3
        const val O_NONBLOCK = 0x800
        const val O_RDWR = 2
        const val POLLIN: Short = 1

        fun isOpen(fd: Int): Boolean = INSTANCE.fcntl(fd, F_GETFD, 0) != -1

        /**
         * Whether the other end of the socketpair [fd] is closed (by everyone
         * holding it: the service's descriptor and the engine's duplicate)
         * within [timeoutMillis]; packets still queued are skipped.
         */
        fun peerClosed(fd: Int, timeoutMillis: Long): Boolean {
            val deadline = System.currentTimeMillis() + timeoutMillis
            val buf = ByteArray(65536)
            while (System.currentTimeMillis() < deadline) {
                val pfd = shortArrayOf((fd and 0xffff).toShort(), (fd ushr 16).toShort(), POLLIN, 0)
                if (INSTANCE.poll(pfd, 1, 100) <= 0) continue
                if (INSTANCE.read(fd, buf, buf.size.toLong()) == 0L) return true
            }
            return false
        }

        /** Reads one packet from [fd], or null if none arrives within [timeoutMillis]. */
        fun readPacket(fd: Int, timeoutMillis: Int): ByteArray? {
            // struct pollfd { int fd; short events; short revents; } as shorts (little endian).
            val pfd = shortArrayOf((fd and 0xffff).toShort(), (fd ushr 16).toShort(), POLLIN, 0)
            if (INSTANCE.poll(pfd, 1, timeoutMillis) <= 0) return null
            val buf = ByteArray(65536)
            val n = INSTANCE.read(fd, buf, buf.size.toLong())
            return if (n > 0) buf.copyOf(n.toInt()) else null
        }
    }
}
