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
 * The generator must not be the bottleneck: frames are masked once at start-up and then only
 * written, received payloads are skipped without copying, and the JSON reports the generator's
 * own CPU time so the runner can show it beside each result.
 *
 * Build: gcc -O2 -o loadgen loadgen.c -lz
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

enum mode { MODE_RT, MODE_HANDSHAKE, MODE_IDLE, MODE_BROADCAST };
enum state { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

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
};

static enum mode mode = MODE_RT;
static const char *host = "127.0.0.1";
static int port = 0, connections = 1, concurrency = 64, rounds = 20;
static size_t size = 64;
static double duration = 5.0, timeout_seconds = 60.0;
static int wait_start;
static int payload_json, deflate_offered, variants, warm_messages;
static const char *deflate_offer = "permessage-deflate; client_max_window_bits";

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
    event.data.ptr = c;
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
}

/* Write as much of the pending buffer as the socket takes; returns -1 on a dead socket. */
static int flush(struct conn *c)
{
    for (;;) {
        if (c->out_off == c->out_len) {
            if (!c->close_queued) break;
            c->close_queued = 0;
            c->out = close_frame;
            c->out_len = sizeof close_frame;
            c->out_off = 0;
        }
        ssize_t written = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
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

/* Send c's next message: its next variant, compressed when c negotiated permessage-deflate. */
static int send_next(struct conn *c)
{
    int slot = frame_slot(c), v = c->variant;
    if (frames[slot] == NULL) build_frames(slot);
    c->variant = (v + 1) % variants;
    return send_buffer(c, frames[slot][v], frame_lens[slot][v]);
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
    close(c->fd);
    if (c->state == ST_OPEN || c->state == ST_CLOSING) open_count--;
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) pending_connects--;
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

static void on_readable(struct conn *c)
{
    static unsigned char buffer[1 << 18];
    ssize_t received = read(c->fd, buffer, sizeof buffer);
    if (received < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
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
        c->state = ST_HANDSHAKE;
        update_events(c);
        if (send_buffer(c, (const unsigned char *)request, request_len) < 0) finish(c, 1);
        return;
    }
    if (flush(c) < 0) finish(c, 1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P [--host 127.0.0.1] [--mode rt|handshake|idle|broadcast]\n"
            "               [--connections N] [--size BYTES] [--duration S] [--rounds K]\n"
            "               [--concurrency C] [--timeout S] [--wait-start]\n"
            "               [--payload bytes|json] [--variants V] [--deflate]\n"
            "               [--deflate-offer TEXT] [--warm-messages K]\n"
            "--wait-start: print READY once connected, start on a line from stdin (idle: stop)\n"
            "--deflate: offer permessage-deflate and send every message compressed\n"
            "--warm-messages: idle mode: K round trips per connection before READY\n");
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
            else usage();
        } else usage();
    }
    if (port <= 0 || connections <= 0 || rounds <= 0 || concurrency <= 0 || variants < 0 ||
        warm_messages < 0)
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

static void report(double wall, double cpu)
{
    static const char *names[] = {"rt", "handshake", "idle", "broadcast"};
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
        }
        if (!stopping && measure_start >= 0) {
            if ((mode == MODE_RT || mode == MODE_HANDSHAKE) && t - measure_start >= duration) stop_reason = 1;
            if (mode == MODE_IDLE) stop_reason = 1; /* held open until the go line */
            if (mode == MODE_BROADCAST &&
                (broadcast_done >= rounds || t - measure_start >= duration))
                stop_reason = 1;
        }
        if (!stopping && (t > hard_deadline || (errors > 0 && mode != MODE_HANDSHAKE))) stop_reason = 2;
        /* Handshake mode retries failures, but not forever against a dead server. */
        if (!stopping && mode == MODE_HANDSHAKE && errors > 1000 && errors > handshakes) stop_reason = 2;
        if (!stopping && stop_reason) {
            stopping = 1;
            measure_end = t;
            if (measure_start < 0) measure_start = t;
            double cpu = cpu_seconds() - cpu_start;
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
        int ready = epoll_wait(epoll_fd, events, 256, 20);
        for (int i = 0; i < ready; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->state == ST_FREE) continue;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
            if (c->state != ST_FREE && (events[i].events & EPOLLOUT)) on_writable(c);
        }
    }
    return stop_reason == 2 ? 1 : 0;
}
