/* loadgen: a single-threaded epoll WebSocket load generator for framewire's benchmarks.
 *
 * Modes (one JSON line on stdout at the end; the runner parses it):
 *   rt         N connections; each sends one masked binary frame of --size bytes, waits for the
 *              whole echo, sends the next. Counts round trips during --duration seconds, measured
 *              from the moment all N connections are open. With --size 1048576 and one
 *              connection this is the "1 MiB streaming throughput" scenario.
 *   handshake  N concurrent loops of: connect, WebSocket handshake, close frame, wait for the
 *              server to close TCP (RFC 6455 7.1.1: the server closes first), repeat.
 *   idle       open N connections, print "READY" on stdout, hold them until a line (or EOF)
 *              arrives on stdin; the runner reads the server's RSS meanwhile. With
 *              --warm-messages K each connection first does K round trips (then READY), so the
 *              RSS shows what a connection holds after traffic.
 * With --wait-start every mode prints "READY n" once its connections are open (handshake: at
 * once) and starts measuring only when a line arrives on stdin, so that the runner can sample
 * the server's CPU time over exactly the measured window.
 *   broadcast  open N connections; connection 0 sends a message, the server sends it to all N;
 *              the time until the last connection has it is one sample. Repeats --rounds times
 *              or for --duration seconds, whichever ends first.
 *   paced      N connections send --rate messages per second in all, open loop: message m goes
 *              out at start + m / rate on connection m % N, whether or not earlier echoes came
 *              back (a connection whose socket is full queues what is due), so every connection
 *              sends at rate / N with its own phase. Replies come back in order on a connection,
 *              so the j-th reply on connection c answers message j * N + c, and its round-trip
 *              time is measured from that message's scheduled time, not from when it was written:
 *              a server that falls behind is charged for the wait it causes (no coordinated
 *              omission, as in wrk2). Messages scheduled in the first --warm-up seconds are not
 *              sampled; sending stops after --warm-up + --duration, then the generator waits up
 *              to max(2, duration) seconds for the last echoes (a message still unanswered then
 *              counts with its age at that moment). Reports p50, p90, p99, p99.9, max, and the
 *              reply rate reached within the window (below --rate: the server was saturated).
 *              Between events the generator sleeps until the next message is due (epoll_pwait2,
 *              nanoseconds, timer slack 1 ns). Each wake-up costs time that lands in the
 *              measured round trips: in this VM about 30 us (p50 against c_echo at 50,000 msg/s:
 *              53 us, against 20 us with --spin). --spin polls epoll without sleeping instead,
 *              for a quiet machine only: on a shared core the scheduler then takes the spinning
 *              generator off for whole time slices, and round trips of milliseconds appear
 *              (c_echo's p50 went from 0.02 to 4 ms at a load average of 2.4 on 2 CPUs), where a
 *              sleeping generator, woken by each reply, preempts the other work. With --spin
 *              its CPU is 100 %, and "busy_percent" the share of time it had work (without
 *              --spin: its CPU percentage).
 *
 * Payloads: --payload bytes (default) sends binary frames of 'x'; --payload json sends text frames
 * of JSON-like chat records (ASCII), in --variants distinct messages (default: enough to fill
 * 64 KiB, at most 64) that each connection sends in turn, so that a server's compressor cannot
 * simply point back at the identical previous message (its 32 KiB window never holds a repeat).
 *
 * --deflate offers permessage-deflate (RFC 7692) the way browsers do,
 * "permessage-deflate; client_max_window_bits" (--deflate-offer replaces that text). Each
 * variant is compressed once at start-up (zlib level 6, memLevel 8 as Chromium does, a fresh
 * raw-deflate stream per message: in effect client_no_context_takeover, which is valid whatever
 * was negotiated, because the message never refers to an earlier one), with the window the
 * server allowed in client_max_window_bits (9 for 8: zlib's 9-bit deflate never refers back more
 * than 250 bytes). It is sent as one frame with RSV1 set. Replies are counted, not inflated: the
 * result says how many were compressed (RSV1 on their first frame) and their payload bytes, so a
 * server that quietly answers uncompressed is visible.
 *
 * --tls speaks wss: TLS 1.3 only, with one cipher suite (TLS_AES_128_GCM_SHA256) and one key
 * exchange group (X25519) offered, so every server negotiates the same ones; the server's
 * certificate is not verified (the runner makes a self-signed one). Non-blocking OpenSSL on the
 * same epoll loop: a TLS handshake state before the HTTP upgrade, then SSL_read and SSL_write
 * instead of read and write.
 *
 * The generator must not be the bottleneck: frames are masked once at start-up and then only
 * written, received payloads are skipped without copying, and the JSON reports the generator's
 * own CPU time so the runner can show it beside each result.
 *
 * Build: gcc -O2 -o loadgen loadgen.c -lz -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

enum mode { MODE_RT, MODE_HANDSHAKE, MODE_IDLE, MODE_BROADCAST, MODE_PACED };
/* ST_TLS: TCP connected, TLS handshake under way (--tls); ST_HANDSHAKE: the HTTP upgrade. */
enum state { ST_FREE, ST_CONNECTING, ST_TLS, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

struct conn {
    int fd;
    enum state state;
    int index;
    char head[4096];        /* HTTP response head while handshaking */
    size_t head_len;
    unsigned char frame_head[14];
    size_t frame_head_len;
    uint64_t payload_left;  /* bytes of the current frame's payload still to skip */
    int in_payload;
    int frame_fin, frame_opcode, frame_rsv1;
    int message_rsv1;       /* RSV1 of the current message's first frame */
    uint64_t message_bytes; /* wire payload bytes of the current message so far */
    int deflate;            /* permessage-deflate was accepted on this connection */
    int client_window_bits; /* the window our compressed frames may use (RFC 7692 7.1.2.2) */
    int variant;            /* which payload variant goes out next */
    int warm_left;          /* idle mode: round trips still to do before READY */
    const unsigned char *out; /* pending write: borrowed, constant buffers only */
    size_t out_len, out_off;
    int want_out;
    int close_queued;       /* a close frame waits behind the pending write */
    double close_deadline;
    SSL *ssl;               /* --tls: the connection's TLS state */
    int tls_wants_write;    /* the TLS handshake waits for the socket to be writable */
    long long owed;         /* paced mode: messages due but not yet started on the socket */
    long long sent, replied; /* paced mode: messages started, and echoes received */
};

static enum mode mode = MODE_RT;
static const char *host = "127.0.0.1";
static int port = 0, connections = 1, concurrency = 64, rounds = 20;
static size_t size = 64;
static double duration = 5.0, timeout_seconds = 60.0;
static int wait_start;
static int payload_json, deflate_offered, variants, warm_messages;
static const char *deflate_offer = "permessage-deflate; client_max_window_bits";
static double rate, warm_up; /* paced mode: messages per second over all connections */
static int use_tls, spin;
static SSL_CTX *tls_context;

static int epoll_fd;
static struct conn *conns;
static unsigned char close_frame[8];
static unsigned char **payloads; /* the variants, uncompressed */
/* Masked frames per variant: [0] uncompressed, [bits] compressed with a (bits)-bit window. */
static unsigned char **frames[16];
static size_t *frame_lens[16];
static char request[1024];
static size_t request_len;
static struct sockaddr_in address;

static int open_count, pending_connects, stopping;
static long long messages, handshakes, errors;
static long long compressed_replies, reply_bytes, deflate_connections, server_reset_connections;
static int warmed_count;
static double measure_start = -1, measure_end = -1;
static int broadcast_received, broadcast_done;
static double broadcast_sent_at;
static double *latencies;
/* Paced mode: round-trip times (seconds) of the sampled messages, grown as needed. */
static double *samples;
static size_t sample_count, sample_capacity;
static long long paced_next;     /* the next message number to schedule */
static double paced_stop_at;     /* no message is scheduled at or after this time */
static double paced_window_end;  /* end of the sampled window (= paced_stop_at) */
static double drain_deadline;    /* stop waiting for echoes then */
static long long window_replies; /* echoes received within the sampled window */
static double max_send_lag;      /* how late the generator itself started a due message */
static double idle_seconds;      /* --spin: time spent in polls that found nothing to do */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
           usage.ru_stime.tv_usec / 1e6;
}

/* Build a masked client frame (RFC 6455 5.2, 5.3) once; it is resent unchanged.
 * first_byte holds FIN, RSV1 (0x40: a compressed message, RFC 7692 6) and the opcode. */
static size_t build_frame(unsigned char *out, int first_byte, const unsigned char *payload,
                          size_t length, const unsigned char mask[4])
{
    size_t pos = 0;
    out[pos++] = (unsigned char)first_byte;
    if (length < 126) {
        out[pos++] = (unsigned char)(0x80 | length);
    } else if (length < 65536) {
        out[pos++] = 0x80 | 126;
        out[pos++] = (unsigned char)(length >> 8);
        out[pos++] = (unsigned char)length;
    } else {
        out[pos++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8) out[pos++] = (unsigned char)(length >> shift);
    }
    memcpy(out + pos, mask, 4);
    pos += 4;
    for (size_t i = 0; i < length; i++) out[pos + i] = payload[i] ^ mask[i & 3];
    return pos + length;
}

/* JSON-like chat records, `length` bytes of ASCII, deterministic for a given seed (an LCG, so
 * the same bytes come out on every machine; benchmarks/run.py's docs describe the shape). */
static const char *const words[] = {
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world", "chat",
    "message", "room", "general", "user", "online", "typing", "reply", "thanks", "sure",
    "tomorrow", "meeting", "project", "deploy", "build", "test", "release", "coffee", "lunch",
    "yes", "no", "maybe", "great", "idea", "sounds", "good"};
static unsigned random_state;

static unsigned next_random(void)
{
    random_state = (random_state * 1103515245u + 12345u) & 0x7fffffffu;
    return random_state >> 8;
}

static void make_json_payload(unsigned char *out, size_t length, unsigned seed)
{
    const size_t word_count = sizeof words / sizeof words[0];
    char record[512];
    size_t pos = 0;
    random_state = seed;
    if (length == 0) return;
    out[pos++] = '[';
    while (pos < length) {
        char text[256];
        size_t text_len = 0;
        unsigned count = 4 + next_random() % 12;
        for (unsigned i = 0; i < count; i++) {
            const char *word = words[next_random() % word_count];
            text_len += (size_t)snprintf(text + text_len, sizeof text - text_len, "%s%s",
                                         i ? " " : "", word);
        }
        unsigned id = 100000 + next_random() % 900000, room = next_random() % 50;
        unsigned user = next_random() % 1000;
        long long ts = 1764000000000LL + next_random();
        int record_len = snprintf(record, sizeof record,
                                  "{\"id\":%u,\"type\":\"message\",\"room\":\"room-%u\","
                                  "\"user\":\"user%u\",\"ts\":%lld,\"text\":\"%s\"},",
                                  id, room, user, ts, text);
        size_t take = (size_t)record_len < length - pos ? (size_t)record_len : length - pos;
        memcpy(out + pos, record, take);
        pos += take;
    }
    if (length > 1) out[length - 1] = ']';
}

/* Compress one whole message as a fresh raw DEFLATE stream, sync-flushed, with the empty-block
 * tail removed (RFC 7692 7.2.1). window_bits 8 is honoured with 9 (see the opening comment). */
static size_t deflate_message(const unsigned char *in, size_t length, int window_bits,
                              unsigned char **out)
{
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (deflateInit2(&stream, 6, Z_DEFLATED, -(window_bits < 9 ? 9 : window_bits), 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        fprintf(stderr, "loadgen: deflateInit2 failed\n");
        exit(2);
    }
    size_t capacity = deflateBound(&stream, (uLong)length) + 64;
    *out = malloc(capacity);
    stream.next_in = (Bytef *)in;
    stream.avail_in = (uInt)length;
    stream.next_out = *out;
    stream.avail_out = (uInt)capacity;
    if (deflate(&stream, Z_SYNC_FLUSH) != Z_OK || stream.avail_in != 0 || stream.avail_out == 0) {
        fprintf(stderr, "loadgen: deflate failed\n");
        exit(2);
    }
    size_t produced = capacity - stream.avail_out;
    deflateEnd(&stream);
    if (produced >= 4 && !memcmp(*out + produced - 4, "\x00\x00\xff\xff", 4)) produced -= 4;
    return produced;
}

static unsigned char frame_mask[4];

/* Build the masked frames of every variant for one slot: 0 uncompressed, 9..15 compressed. */
static void build_frames(int slot)
{
    int opcode = payload_json ? 1 : 2;
    frames[slot] = calloc((size_t)variants, sizeof *frames[slot]);
    frame_lens[slot] = calloc((size_t)variants, sizeof *frame_lens[slot]);
    for (int v = 0; v < variants; v++) {
        const unsigned char *body = payloads[v];
        size_t body_len = size;
        unsigned char *compressed = NULL;
        if (slot) body_len = deflate_message(payloads[v], size, slot, &compressed);
        if (compressed) body = compressed;
        frames[slot][v] = malloc(body_len + 14);
        frame_lens[slot][v] =
            build_frame(frames[slot][v], 0x80 | (slot ? 0x40 : 0) | opcode, body, body_len,
                        frame_mask);
        free(compressed);
    }
}

static int frame_slot(const struct conn *c)
{
    if (!c->deflate) return 0;
    return c->client_window_bits < 9 ? 9 : c->client_window_bits;
}

static void update_events(struct conn *c)
{
    struct epoll_event event = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0)};
    if (c->state == ST_CONNECTING) event.events = EPOLLOUT;
    if (c->state == ST_TLS) event.events = c->tls_wants_write ? EPOLLOUT : EPOLLIN;
    event.data.ptr = c;
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
}

/* Map a failed SSL_read/SSL_write (return value ret) to read/write's convention: -1 with errno
 * EAGAIN when the socket must become ready first, 0 for the peer's end of the stream, -1 with
 * another errno for a failure. A TLS 1.3 server could make SSL_read want to write (a KeyUpdate
 * asking for ours); none of the benchmark's servers does, so that case just waits. */
static ssize_t tls_result(struct conn *c, int ret)
{
    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0) errno = ECONNRESET;
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}

static ssize_t conn_write(struct conn *c, const unsigned char *data, size_t length)
{
    if (c->ssl == NULL) return write(c->fd, data, length);
    ERR_clear_error();
    /* SSL_MODE_ENABLE_PARTIAL_WRITE: returns after each record, like a short write(). */
    int written = SSL_write(c->ssl, data, length > (1 << 30) ? (1 << 30) : (int)length);
    return written > 0 ? written : tls_result(c, written);
}

static ssize_t conn_read(struct conn *c, unsigned char *buffer, size_t length)
{
    if (c->ssl == NULL) return read(c->fd, buffer, length);
    ERR_clear_error();
    int received = SSL_read(c->ssl, buffer, (int)length);
    return received > 0 ? received : tls_result(c, received);
}

static void load_next_frame(struct conn *c);

/* Write as much of the pending buffer as the socket takes; returns -1 on a dead socket. Paced
 * mode: when the buffer is done and messages are owed, the next one follows at once. */
static int flush(struct conn *c)
{
    for (;;) {
        if (c->out_off == c->out_len && c->owed > 0 && c->state == ST_OPEN) {
            c->owed--;
            c->sent++;
            load_next_frame(c);
            continue;
        }
        if (c->out_off == c->out_len) {
            if (!c->close_queued) break;
            c->close_queued = 0;
            c->out = close_frame;
            c->out_len = sizeof close_frame;
            c->out_off = 0;
        }
        ssize_t written = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (written < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        c->out_off += (size_t)written;
    }
    int want = c->out_off < c->out_len;
    if (want != c->want_out) {
        c->want_out = want;
        update_events(c);
    }
    return 0;
}

static int send_buffer(struct conn *c, const unsigned char *buffer, size_t length)
{
    c->out = buffer;
    c->out_len = length;
    c->out_off = 0;
    return flush(c);
}

/* Make c's next message the pending write: its next variant, compressed when c negotiated
 * permessage-deflate. */
static void load_next_frame(struct conn *c)
{
    int slot = frame_slot(c), v = c->variant;
    if (frames[slot] == NULL) build_frames(slot);
    c->variant = (v + 1) % variants;
    c->out = frames[slot][v];
    c->out_len = frame_lens[slot][v];
    c->out_off = 0;
}

/* Send c's next message now. */
static int send_next(struct conn *c)
{
    load_next_frame(c);
    return flush(c);
}

static void start_connect(struct conn *c);

static void finish(struct conn *c, int failed)
{
    if (failed) {
        errors++;
        /* RST instead of FIN: no TIME_WAIT pile-up on the client side. */
        struct linger linger = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
    }
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl != NULL) {
        SSL_free(c->ssl); /* no close_notify: the WebSocket closing handshake already ran */
        c->ssl = NULL;
    }
    close(c->fd);
    if (c->state == ST_OPEN || c->state == ST_CLOSING) open_count--;
    if (c->state == ST_CONNECTING || c->state == ST_TLS || c->state == ST_HANDSHAKE)
        pending_connects--;
    c->state = ST_FREE;
    c->fd = -1;
    if (mode == MODE_HANDSHAKE && !stopping) start_connect(c);
}

static void start_connect(struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(2);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(c, 0, sizeof *c);
    c->index = (int)(c - conns);
    c->fd = fd;
    c->state = ST_CONNECTING;
    pending_connects++;
    struct epoll_event event = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS) {
        finish(c, 1);
    }
}

static void begin_close(struct conn *c)
{
    c->owed = 0;
    c->state = ST_CLOSING;
    c->close_deadline = now() + 2.0;
    c->close_queued = 1; /* after any frame still being written */
    if (flush(c) < 0) finish(c, 1);
}

static void on_open(struct conn *c)
{
    pending_connects--;
    open_count++;
    c->state = ST_OPEN;
    c->variant = c->index % variants;
    int slot = frame_slot(c);
    if (frames[slot] == NULL) build_frames(slot); /* before the measurement, not during it */
    if (mode == MODE_HANDSHAKE) {
        handshakes++;
        begin_close(c);
    } else if (mode == MODE_IDLE && warm_messages > 0) {
        c->warm_left = warm_messages;
        if (send_next(c) < 0) finish(c, 1);
    }
}

static void add_sample(double seconds)
{
    if (sample_count == sample_capacity) {
        sample_capacity = sample_capacity ? 2 * sample_capacity : 65536;
        samples = realloc(samples, sample_capacity * sizeof *samples);
        if (samples == NULL) {
            fprintf(stderr, "loadgen: out of memory for latency samples\n");
            exit(2);
        }
    }
    samples[sample_count++] = seconds;
}

/* When was message number j of connection c due? (paced mode: see the opening comment) */
static double paced_due(const struct conn *c, long long j)
{
    return measure_start + (double)(j * connections + c->index) / rate;
}

static long long paced_replied;

/* Paced mode: the echo of c's next unanswered message arrived. */
static void on_paced_reply(struct conn *c)
{
    double t = now(), due = paced_due(c, c->replied++);
    paced_replied++;
    if (due >= measure_start + warm_up) add_sample(t - due);
    if (t >= measure_start + warm_up && t < paced_window_end) window_replies++;
}

/* Paced mode: start every message due by t (up to the end of sending) on its connection. */
static void paced_send_due(double t)
{
    for (;;) {
        double due = measure_start + (double)paced_next / rate;
        if (due > t || due >= paced_stop_at) return;
        struct conn *c = &conns[paced_next % connections];
        paced_next++;
        if (c->state != ST_OPEN) continue; /* already counted as an error */
        int idle = c->out_off == c->out_len;
        c->owed++;
        if (!idle) continue; /* queued behind a write the server has not taken yet */
        if (t - due > max_send_lag) max_send_lag = t - due;
        if (flush(c) < 0) finish(c, 1);
    }
}

/* Paced mode, at the end: a message never answered counts with its age now. */
static long long add_unanswered_samples(double t)
{
    long long unanswered = 0;
    for (int i = 0; i < connections; i++) {
        struct conn *c = &conns[i];
        for (long long j = c->replied; j < c->sent + c->owed; j++) {
            double due = paced_due(c, j);
            unanswered++;
            if (due >= measure_start + warm_up) add_sample(t - due);
        }
    }
    return unanswered;
}

/* A whole message (FIN data frame) arrived on c. */
static void on_message(struct conn *c)
{
    int counted = mode == MODE_IDLE || (measure_start >= 0 && measure_end < 0);
    if (counted) {
        messages++;
        if (c->message_rsv1) compressed_replies++;
        reply_bytes += (long long)c->message_bytes;
    }
    if (mode == MODE_RT) {
        if (!stopping && send_next(c) < 0) finish(c, 1);
    } else if (mode == MODE_PACED) {
        if (!stopping) on_paced_reply(c);
    } else if (mode == MODE_IDLE) {
        if (c->warm_left > 0 && --c->warm_left > 0) {
            if (send_next(c) < 0) finish(c, 1);
        } else if (c->warm_left == 0 && warm_messages > 0) {
            warmed_count++;
            c->warm_left = -1;
        }
    } else if (mode == MODE_BROADCAST) {
        if (++broadcast_received == connections) {
            latencies[broadcast_done++] = now() - broadcast_sent_at;
            broadcast_received = 0;
            if (broadcast_done < rounds) {
                broadcast_sent_at = now();
                if (send_next(&conns[0]) < 0) finish(&conns[0], 1);
            }
        }
    }
}

/* Parse server frames (unmasked) without copying payloads. Returns -1 on a bad frame. */
static int feed_frames(struct conn *c, const unsigned char *data, size_t length)
{
    size_t pos = 0;
    while (pos < length) {
        if (c->in_payload) {
            size_t take = length - pos;
            if (take > c->payload_left) take = (size_t)c->payload_left;
            c->payload_left -= take;
            pos += take;
        } else {
            c->frame_head[c->frame_head_len++] = data[pos++];
            if (c->frame_head_len < 2) continue;
            size_t need = 2;
            int length7 = c->frame_head[1] & 0x7f;
            if (length7 == 126) need += 2;
            if (length7 == 127) need += 8;
            if (c->frame_head[1] & 0x80) need += 4;
            if (c->frame_head_len < need) continue;
            uint64_t payload_length = (uint64_t)length7;
            if (length7 == 126) payload_length = (uint64_t)c->frame_head[2] << 8 | c->frame_head[3];
            if (length7 == 127) {
                payload_length = 0;
                for (int i = 2; i < 10; i++) payload_length = payload_length << 8 | c->frame_head[i];
            }
            c->frame_fin = c->frame_head[0] & 0x80;
            c->frame_rsv1 = c->frame_head[0] & 0x40;
            c->frame_opcode = c->frame_head[0] & 0x0f;
            c->frame_head_len = 0;
            if (c->frame_opcode == 1 || c->frame_opcode == 2) {
                /* RFC 7692 6.1: RSV1 on a message's first frame marks it compressed. */
                c->message_rsv1 = c->frame_rsv1 != 0;
                c->message_bytes = 0;
            }
            if (c->frame_opcode < 8) c->message_bytes += payload_length;
            c->payload_left = payload_length;
            c->in_payload = 1;
        }
        if (c->in_payload && c->payload_left == 0) {
            c->in_payload = 0;
            if (c->frame_opcode == 8) {
                if (c->state != ST_CLOSING) {
                    errors++; /* the server closed on us: report it, do not hide it */
                    return -1;
                }
            } else if (c->frame_opcode < 8 && c->frame_fin) {
                on_message(c);
                if (c->state == ST_FREE) return 0;
            }
        }
    }
    return 0;
}

/* Read the Sec-WebSocket-Extensions answer in c->head: was permessage-deflate accepted, and
 * which window may our compressed messages use? Returns -1 on an answer we did not ask for. */
static int read_extensions(struct conn *c)
{
    static const char name[] = "\nsec-websocket-extensions:";
    char line[512];
    c->deflate = 0;
    c->client_window_bits = 15;
    for (const char *p = c->head; *p; p++) {
        if (strncasecmp(p, name, sizeof name - 1) != 0) continue;
        const char *value = p + sizeof name - 1, *stop = strstr(value, "\r\n");
        size_t length = stop ? (size_t)(stop - value) : strlen(value);
        if (length >= sizeof line) length = sizeof line - 1;
        for (size_t i = 0; i < length; i++) line[i] = (char)tolower((unsigned char)value[i]);
        line[length] = 0;
        if (strstr(line, "permessage-deflate") == NULL) continue;
        if (!deflate_offered) {
            fprintf(stderr, "loadgen: server accepted an extension we did not offer: %s\n", line);
            return -1;
        }
        c->deflate = 1;
        deflate_connections++;
        if (strstr(line, "server_no_context_takeover")) server_reset_connections++;
        const char *bits = strstr(line, "client_max_window_bits");
        if (bits) {
            bits += strlen("client_max_window_bits");
            while (*bits == ' ' || *bits == '=' || *bits == '"') bits++;
            if (*bits >= '0' && *bits <= '9') c->client_window_bits = atoi(bits);
        }
    }
    return 0;
}

static void on_handshake_bytes(struct conn *c, const unsigned char *data, size_t length)
{
    size_t room = sizeof c->head - 1 - c->head_len;
    size_t take = length < room ? length : room;
    memcpy(c->head + c->head_len, data, take);
    c->head_len += take;
    c->head[c->head_len] = 0;
    char *end = strstr(c->head, "\r\n\r\n");
    if (end == NULL) {
        if (c->head_len == sizeof c->head - 1) finish(c, 1);
        return;
    }
    if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "loadgen: handshake refused: %.80s\n", c->head);
        finish(c, 1);
        return;
    }
    size_t used = (size_t)(end + 4 - c->head);
    if (read_extensions(c) < 0) {
        finish(c, 1);
        return;
    }
    on_open(c);
    /* Bytes after the head (already-sent frames) belong to the frame parser. */
    size_t head_bytes_in_chunk = used - (c->head_len - take);
    if (c->state == ST_OPEN && head_bytes_in_chunk < length) {
        if (feed_frames(c, data + head_bytes_in_chunk, length - head_bytes_in_chunk) < 0)
            finish(c, 1);
    }
}

/* Read once (plain TCP: epoll is level-triggered and calls again), or with TLS until OpenSSL
 * wants more from the socket: it may hold decrypted bytes that epoll cannot see. */
static void on_readable(struct conn *c)
{
    static unsigned char buffer[1 << 18];
    do {
        ssize_t received = conn_read(c, buffer, sizeof buffer);
        if (received < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            if (c->state != ST_CLOSING && mode != MODE_HANDSHAKE)
                fprintf(stderr, "loadgen: read: %s\n", strerror(errno));
            finish(c, c->state != ST_CLOSING);
            return;
        }
        if (received == 0) { /* EOF: expected only after our close frame */
            finish(c, c->state != ST_CLOSING);
            return;
        }
        if (c->state == ST_HANDSHAKE) {
            on_handshake_bytes(c, buffer, (size_t)received);
        } else if (feed_frames(c, buffer, (size_t)received) < 0) {
            finish(c, 1);
        }
    } while (c->ssl != NULL && c->state != ST_FREE);
    /* A TLS write that waited for a read (never in TLS 1.3 in practice) goes on now. */
    if (c->ssl != NULL && c->state != ST_FREE && c->out_off < c->out_len && flush(c) < 0)
        finish(c, 1);
}

static void start_upgrade(struct conn *c)
{
    c->state = ST_HANDSHAKE;
    update_events(c);
    if (send_buffer(c, (const unsigned char *)request, request_len) < 0) finish(c, 1);
}

/* Advance the TLS handshake; on success, send the HTTP upgrade request. */
static void tls_step(struct conn *c)
{
    ERR_clear_error();
    int result = SSL_do_handshake(c->ssl);
    if (result == 1) {
        start_upgrade(c);
        return;
    }
    int error = SSL_get_error(c->ssl, result);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        int wants_write = error == SSL_ERROR_WANT_WRITE;
        if (wants_write != c->tls_wants_write) {
            c->tls_wants_write = wants_write;
            update_events(c);
        }
        return;
    }
    if (mode != MODE_HANDSHAKE) {
        fprintf(stderr, "loadgen: TLS handshake failed\n");
        ERR_print_errors_fp(stderr);
    }
    finish(c, 1);
}

static void start_tls(struct conn *c)
{
    c->ssl = SSL_new(tls_context);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    SSL_set_connect_state(c->ssl);
    c->state = ST_TLS;
    c->tls_wants_write = 1; /* the ClientHello goes out first */
    update_events(c);
    tls_step(c);
}

static void on_writable(struct conn *c)
{
    if (c->state == ST_CONNECTING) {
        int error = 0;
        socklen_t error_length = sizeof error;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &error_length);
        if (error != 0) {
            if (mode != MODE_HANDSHAKE) fprintf(stderr, "loadgen: connect: %s\n", strerror(error));
            finish(c, 1);
            return;
        }
        if (use_tls) start_tls(c);
        else start_upgrade(c);
        return;
    }
    if (flush(c) < 0) finish(c, 1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P [--host 127.0.0.1]\n"
            "               [--mode rt|handshake|idle|broadcast|paced]\n"
            "               [--connections N] [--size BYTES] [--duration S] [--rounds K]\n"
            "               [--concurrency C] [--timeout S] [--wait-start]\n"
            "               [--payload bytes|json] [--variants V] [--deflate]\n"
            "               [--deflate-offer TEXT] [--warm-messages K]\n"
            "               [--rate MSG_PER_S] [--warm-up S] [--spin] [--tls]\n"
            "--wait-start: print READY once connected, start on a line from stdin (idle: stop)\n"
            "--deflate: offer permessage-deflate and send every message compressed\n"
            "--warm-messages: idle mode: K round trips per connection before READY\n"
            "--rate: paced mode: messages per second over all connections (required)\n"
            "--warm-up: paced mode: seconds of paced traffic before sampling starts\n"
            "--spin: paced mode: poll without sleeping (a quiet machine only)\n"
            "--tls: wss (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519; certificate not verified)\n");
    exit(2);
}

static void parse_arguments(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (!strcmp(name, "--wait-start")) {
            wait_start = 1;
            continue;
        }
        if (!strcmp(name, "--deflate")) {
            deflate_offered = 1;
            continue;
        }
        if (!strcmp(name, "--tls")) {
            use_tls = 1;
            continue;
        }
        if (!strcmp(name, "--spin")) {
            spin = 1;
            continue;
        }
        if (i + 1 >= argc) usage();
        const char *value = argv[++i];
        if (!strcmp(name, "--port")) port = atoi(value);
        else if (!strcmp(name, "--host")) host = value;
        else if (!strcmp(name, "--connections")) connections = atoi(value);
        else if (!strcmp(name, "--size")) size = (size_t)atoll(value);
        else if (!strcmp(name, "--duration")) duration = atof(value);
        else if (!strcmp(name, "--rounds")) rounds = atoi(value);
        else if (!strcmp(name, "--concurrency")) concurrency = atoi(value);
        else if (!strcmp(name, "--timeout")) timeout_seconds = atof(value);
        else if (!strcmp(name, "--variants")) variants = atoi(value);
        else if (!strcmp(name, "--warm-messages")) warm_messages = atoi(value);
        else if (!strcmp(name, "--rate")) rate = atof(value);
        else if (!strcmp(name, "--warm-up")) warm_up = atof(value);
        else if (!strcmp(name, "--deflate-offer")) {
            deflate_offer = value;
            deflate_offered = 1;
        } else if (!strcmp(name, "--payload")) {
            if (!strcmp(value, "json")) payload_json = 1;
            else if (strcmp(value, "bytes")) usage();
        }
        else if (!strcmp(name, "--mode")) {
            if (!strcmp(value, "rt")) mode = MODE_RT;
            else if (!strcmp(value, "handshake")) mode = MODE_HANDSHAKE;
            else if (!strcmp(value, "idle")) mode = MODE_IDLE;
            else if (!strcmp(value, "broadcast")) mode = MODE_BROADCAST;
            else if (!strcmp(value, "paced")) mode = MODE_PACED;
            else usage();
        } else usage();
    }
    if (port <= 0 || connections <= 0 || rounds <= 0 || concurrency <= 0 || variants < 0 ||
        warm_messages < 0 || warm_up < 0 || (mode == MODE_PACED && !(rate > 0)))
        usage();
    if (variants == 0) {
        /* JSON: distinct messages filling 64 KiB, more than any deflate window (32 KiB). */
        size_t fill = size ? (65536 + size - 1) / size : 1;
        variants = payload_json ? (int)(fill > 64 ? 64 : fill) : 1;
    }
}

static void prepare(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int i = 0; i < 4; i++) frame_mask[i] = (unsigned char)rand();
    payloads = calloc((size_t)variants, sizeof *payloads);
    for (int v = 0; v < variants; v++) {
        payloads[v] = malloc(size ? size : 1);
        if (payload_json) make_json_payload(payloads[v], size, (unsigned)v + 1);
        else memset(payloads[v], 'x', size);
    }
    const unsigned char close_payload[2] = {0x03, 0xe8}; /* 1000: normal closure */
    build_frame(close_frame, 0x80 | 8, close_payload, 2, frame_mask);
    char extensions[300] = "";
    if (deflate_offered)
        snprintf(extensions, sizeof extensions, "Sec-WebSocket-Extensions: %s\r\n", deflate_offer);
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                                   host, port, extensions);
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) usage();
    conns = calloc((size_t)connections, sizeof *conns);
    latencies = calloc((size_t)rounds, sizeof *latencies);
    for (int i = 0; i < connections; i++) conns[i].fd = -1;
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    /* One descriptor per connection (10,000 for the large broadcast) plus a few. */
    struct rlimit files;
    rlim_t wanted = (rlim_t)connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < wanted) {
        files.rlim_cur = files.rlim_max == RLIM_INFINITY || wanted < files.rlim_max
                             ? wanted
                             : files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    /* Paced mode wakes for each due message: ask for timers without the default 50 us slack. */
    if (mode == MODE_PACED) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    if (use_tls) {
        tls_context = SSL_CTX_new(TLS_client_method());
        if (tls_context == NULL ||
            !SSL_CTX_set_min_proto_version(tls_context, TLS1_3_VERSION) ||
            !SSL_CTX_set_max_proto_version(tls_context, TLS1_3_VERSION) ||
            !SSL_CTX_set_ciphersuites(tls_context, "TLS_AES_128_GCM_SHA256") ||
            !SSL_CTX_set1_groups_list(tls_context, "X25519")) {
            ERR_print_errors_fp(stderr);
            exit(2);
        }
        SSL_CTX_set_mode(tls_context,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* A server that closes TCP after its close frame without close_notify ends the stream
         * like one that sent it (the WebSocket closing handshake already ran). */
        SSL_CTX_set_options(tls_context, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_CTX_set_verify(tls_context, SSL_VERIFY_NONE, NULL);
    }
}

/* Wait for a line or EOF on stdin without blocking the event loop. */
static int stdin_ready(void)
{
    struct pollfd poll_fd = {.fd = 0, .events = POLLIN};
    return poll(&poll_fd, 1, 0) > 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of the sorted samples, by nearest rank, in milliseconds. */
static double quantile_ms(double q)
{
    if (sample_count == 0) return 0.0;
    size_t rank = (size_t)(q * (double)sample_count + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > sample_count) rank = sample_count;
    return 1000 * samples[rank - 1];
}

static long long paced_unanswered;

static void report(double wall, double cpu)
{
    static const char *names[] = {"rt", "handshake", "idle", "broadcast", "paced"};
    printf("{\"mode\": \"%s\", \"connections\": %d, \"size\": %zu, \"seconds\": %.4f, "
           "\"cpu_seconds\": %.4f, \"cpu_percent\": %.1f, \"errors\": %lld",
           names[mode], connections, size, wall, cpu, wall > 0 ? 100.0 * cpu / wall : 0.0, errors);
    printf(", \"payload\": \"%s\", \"variants\": %d, \"deflate_offered\": %d, "
           "\"deflate_connections\": %lld, \"server_no_context_takeover_connections\": %lld, "
           "\"replies\": %lld, \"compressed_replies\": %lld, \"reply_payload_bytes\": %lld",
           payload_json ? "json" : "bytes", variants, deflate_offered, deflate_connections,
           server_reset_connections, messages, compressed_replies, reply_bytes);
    if (mode == MODE_RT) {
        printf(", \"messages\": %lld, \"rate\": %.1f, \"mib_per_s\": %.2f", messages,
               wall > 0 ? messages / wall : 0.0, wall > 0 ? messages * (double)size / wall / 1048576 : 0.0);
    } else if (mode == MODE_HANDSHAKE) {
        printf(", \"handshakes\": %lld, \"rate\": %.1f", handshakes, wall > 0 ? handshakes / wall : 0.0);
    } else if (mode == MODE_BROADCAST) {
        qsort(latencies, (size_t)broadcast_done, sizeof *latencies, compare_doubles);
        double total = 0;
        for (int i = 0; i < broadcast_done; i++) total += latencies[i];
        printf(", \"rounds\": %d, \"median_ms\": %.3f, \"deliveries_per_s\": %.1f", broadcast_done,
               broadcast_done ? 1000 * latencies[broadcast_done / 2] : 0.0,
               total > 0 ? (double)broadcast_done * connections / total : 0.0);
    } else if (mode == MODE_PACED) {
        qsort(samples, sample_count, sizeof *samples, compare_doubles);
        double total = 0;
        for (size_t i = 0; i < sample_count; i++) total += samples[i];
        printf(", \"messages\": %lld, \"offered_rate\": %.1f, \"rate\": %.1f, \"window_seconds\": %.4f"
               ", \"samples\": %zu, \"unanswered\": %lld, \"p50_ms\": %.4f, \"p90_ms\": %.4f"
               ", \"p99_ms\": %.4f, \"p999_ms\": %.4f, \"max_ms\": %.4f, \"mean_ms\": %.4f"
               ", \"max_send_lag_ms\": %.4f, \"spin\": %d, \"busy_percent\": %.1f",
               messages, rate, duration > 0 ? window_replies / duration : 0.0, duration,
               sample_count, paced_unanswered, quantile_ms(0.50), quantile_ms(0.90),
               quantile_ms(0.99), quantile_ms(0.999), quantile_ms(1.0),
               sample_count ? 1000 * total / (double)sample_count : 0.0, 1000 * max_send_lag, spin,
               wall <= 0 ? 0.0 : spin ? 100 * (wall - idle_seconds) / wall : 100 * cpu / wall);
    }
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    parse_arguments(argc, argv);
    prepare();
    double started = now(), hard_deadline = started + timeout_seconds, cpu_start = 0;
    int next_to_open = 0, announced = 0, stop_reason = 0;
    int gate_open = !wait_start && mode != MODE_IDLE;
    struct epoll_event events[256];

    for (;;) {
        double t = now();
        /* Open connections, at most `concurrency` handshakes in flight (listen backlogs). */
        while (!stopping && (gate_open || mode != MODE_HANDSHAKE) && next_to_open < connections &&
               pending_connects < concurrency)
            start_connect(&conns[next_to_open++]);
        int all_open = mode == MODE_HANDSHAKE ||
                       (open_count == connections &&
                        (mode != MODE_IDLE || warm_messages == 0 || warmed_count == connections));
        if (measure_start < 0 && all_open && !gate_open) {
            /* --wait-start: the runner samples the server (RSS, CPU) between READY and go. */
            if (!announced) {
                printf("READY %d\n", open_count);
                fflush(stdout);
                announced = 1;
            }
            if (stdin_ready()) {
                char line[256];
                if (read(0, line, sizeof line) < 0) perror("loadgen: stdin");
                gate_open = 1;
            }
        }
        if (measure_start < 0 && all_open && gate_open) {
            measure_start = t;
            cpu_start = cpu_seconds();
            if (mode == MODE_RT)
                for (int i = 0; i < connections; i++)
                    if (send_next(&conns[i]) < 0) finish(&conns[i], 1);
            if (mode == MODE_BROADCAST) {
                broadcast_sent_at = t;
                if (send_next(&conns[0]) < 0) finish(&conns[0], 1);
            }
            if (mode == MODE_PACED) {
                paced_stop_at = paced_window_end = t + warm_up + duration;
                drain_deadline = paced_stop_at + (duration > 2 ? duration : 2);
            }
        }
        long long scheduled_before = paced_next;
        if (mode == MODE_PACED && measure_start >= 0 && !stopping) paced_send_due(t);
        if (!stopping && measure_start >= 0) {
            if ((mode == MODE_RT || mode == MODE_HANDSHAKE) && t - measure_start >= duration) stop_reason = 1;
            if (mode == MODE_IDLE) stop_reason = 1; /* held open until the go line */
            if (mode == MODE_BROADCAST &&
                (broadcast_done >= rounds || t - measure_start >= duration))
                stop_reason = 1;
            /* Paced: after the last due message, once every echo is back (or too late). */
            if (mode == MODE_PACED && t >= paced_stop_at &&
                (paced_replied >= paced_next || t >= drain_deadline))
                stop_reason = 1;
        }
        if (!stopping && (t > hard_deadline || (errors > 0 && mode != MODE_HANDSHAKE))) stop_reason = 2;
        /* Handshake mode retries failures, but not forever against a dead server. */
        if (!stopping && mode == MODE_HANDSHAKE && errors > 1000 && errors > handshakes) stop_reason = 2;
        if (!stopping && stop_reason) {
            stopping = 1;
            measure_end = now(); /* t can be stale: paced mode may have queued a backlog */
            if (measure_start < 0) measure_start = t;
            double cpu = cpu_seconds() - cpu_start;
            if (mode == MODE_PACED) paced_unanswered = add_unanswered_samples(measure_end);
            report(measure_end - measure_start, cpu);
            for (int i = 0; i < connections; i++) {
                if (conns[i].state == ST_OPEN) begin_close(&conns[i]);
                else if (conns[i].state != ST_FREE && conns[i].state != ST_CLOSING) finish(&conns[i], 0);
            }
        }
        if (stopping) {
            int busy = 0;
            for (int i = 0; i < connections; i++) {
                if (conns[i].state == ST_CLOSING && t > conns[i].close_deadline) finish(&conns[i], 1);
                else if (conns[i].state != ST_FREE) busy = 1;
            }
            if (!busy) break;
        }
        /* Wait for events, at most 20 ms; paced mode: at most until the next message is due, or
         * not at all with --spin (see the opening comment). */
        int pacing = mode == MODE_PACED && measure_start >= 0 && !stopping;
        double wait = 0.020;
        if (pacing) {
            double due = measure_start + (double)paced_next / rate;
            if (spin) wait = 0;
            else if (due < paced_stop_at) {
                double until = due - now();
                wait = until < 0 ? 0 : until < wait ? until : wait;
            }
        }
        struct timespec timeout = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        int ready = epoll_pwait2(epoll_fd, events, 256, &timeout, NULL);
        if (pacing && spin && ready == 0 && paced_next == scheduled_before)
            idle_seconds += now() - t; /* an empty poll */
        for (int i = 0; i < ready; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->state == ST_FREE) continue;
            if (c->state == ST_TLS) {
                tls_step(c);
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
            if (c->state != ST_FREE && (events[i].events & EPOLLOUT)) on_writable(c);
        }
    }
    return stop_reason == 2 ? 1 : 0;
}
