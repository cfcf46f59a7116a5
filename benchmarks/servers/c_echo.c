/* c_echo: a minimal single-threaded epoll WebSocket echo server, the benchmarks' BASELINE.
 *
 * It is not a contender: it shows how fast the load generator and the loopback can go, so that a
 * contender far below it is known to be the bottleneck itself. It implements only what the
 * benchmarks use: the opening handshake (RFC 6455 4.2.2, with SHA-1 + base64 for the accept
 * key), unmasking client frames, echoing each frame with the same opcode and FIN bit, answering
 * a close frame and closing TCP first (RFC 6455 7.1.1). No extensions, no UTF-8 checks.
 *
 *   c_echo --port P [--broadcast]
 * With --broadcast, every received message goes to every open connection instead of the sender.
 *
 * Build: gcc -O2 -o c_echo c_echo.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct buffer {
    unsigned char *data;
    size_t length, capacity;
};

struct conn {
    int fd;
    int open;              /* handshake done */
    int closing;           /* close frame queued: close TCP once it is written */
    struct buffer in;      /* unparsed bytes */
    struct buffer out;     /* bytes to write */
    size_t out_offset;
    int want_out;
    struct conn *next, *previous; /* list of open connections, for --broadcast */
};

static int epoll_fd, broadcast_mode;
static struct conn *open_list;

static void reserve(struct buffer *b, size_t extra);

static void append(struct buffer *b, const void *data, size_t length)
{
    reserve(b, length);
    memcpy(b->data + b->length, data, length);
    b->length += length;
}

static void reserve(struct buffer *b, size_t extra)
{
    if (b->length + extra > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < b->length + extra) capacity *= 2;
        b->data = realloc(b->data, capacity);
        if (b->data == NULL) abort();
        b->capacity = capacity;
    }
}

/* XOR with the 4-byte mask, 8 bytes at a time (memcpy: the payload may be unaligned). */
static void unmask(unsigned char *payload, uint64_t length, const unsigned char mask[4])
{
    uint64_t i = 0, word, mask_word;
    unsigned char repeated[8];
    for (int k = 0; k < 8; k++) repeated[k] = mask[k & 3];
    memcpy(&mask_word, repeated, 8);
    for (; i + 8 <= length; i += 8) {
        memcpy(&word, payload + i, 8);
        word ^= mask_word;
        memcpy(payload + i, &word, 8);
    }
    for (; i < length; i++) payload[i] ^= mask[i & 3];
}

static void consume(struct buffer *b, size_t length)
{
    memmove(b->data, b->data + length, b->length - length);
    b->length -= length;
}

/* --- SHA-1 (FIPS 180-4) and base64, just enough for Sec-WebSocket-Accept --- */

static uint32_t rotate_left(uint32_t value, int bits) { return value << bits | value >> (32 - bits); }

static void sha1(const unsigned char *message, size_t length, unsigned char digest[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t padded_length = ((length + 8) / 64 + 1) * 64;
    unsigned char *padded = calloc(padded_length, 1);
    memcpy(padded, message, length);
    padded[length] = 0x80;
    uint64_t bit_length = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) padded[padded_length - 1 - i] = (unsigned char)(bit_length >> (8 * i));
    for (size_t block = 0; block < padded_length; block += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++) {
            const unsigned char *p = padded + block + 4 * i;
            w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
        for (int i = 16; i < 80; i++) w[i] = rotate_left(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t temp = rotate_left(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rotate_left(b, 30); b = a; a = temp;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(padded);
    for (int i = 0; i < 20; i++) digest[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *data, size_t length, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < length; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < length) v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < length) v |= data[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < length ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < length ? alphabet[v & 63] : '=';
    }
    out[o] = 0;
}

/* --- connections --- */

static void set_events(struct conn *c)
{
    struct epoll_event event = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
}

static void drop(struct conn *c)
{
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->open) {
        if (c->previous) c->previous->next = c->next;
        else open_list = c->next;
        if (c->next) c->next->previous = c->previous;
    }
    free(c->in.data);
    free(c->out.data);
    free(c);
}

/* Returns 0 if c is still alive. */
static int flush(struct conn *c)
{
    while (c->out_offset < c->out.length) {
        ssize_t written = write(c->fd, c->out.data + c->out_offset, c->out.length - c->out_offset);
        if (written < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            drop(c);
            return -1;
        }
        c->out_offset += (size_t)written;
    }
    if (c->out_offset == c->out.length) {
        c->out.length = c->out_offset = 0;
        if (c->closing) { /* RFC 6455 7.1.1: the server closes the TCP connection first */
            drop(c);
            return -1;
        }
    }
    int want = c->out_offset < c->out.length;
    if (want != c->want_out) {
        c->want_out = want;
        set_events(c);
    }
    return 0;
}

static void write_without_drop(struct conn *c)
{
    if (c->want_out) return; /* already waiting for EPOLLOUT */
    ssize_t written = write(c->fd, c->out.data + c->out_offset, c->out.length - c->out_offset);
    if (written > 0) c->out_offset += (size_t)written;
    if (c->out_offset == c->out.length) {
        c->out.length = c->out_offset = 0;
    } else {
        c->want_out = 1;
        set_events(c);
    }
}

static void queue_frame(struct conn *c, int first_byte, const unsigned char *payload, size_t length)
{
    unsigned char head[10];
    size_t head_length = 2;
    head[0] = (unsigned char)first_byte;
    if (length < 126) {
        head[1] = (unsigned char)length;
    } else if (length < 65536) {
        head[1] = 126;
        head[2] = (unsigned char)(length >> 8);
        head[3] = (unsigned char)length;
        head_length = 4;
    } else {
        head[1] = 127;
        for (int i = 0; i < 8; i++) head[2 + i] = (unsigned char)((uint64_t)length >> (56 - 8 * i));
        head_length = 10;
    }
    append(&c->out, head, head_length);
    append(&c->out, payload, length);
}

static int handle_handshake(struct conn *c)
{
    append(&c->in, "", 1); /* NUL-terminate for the string functions; removed below */
    c->in.length--;
    char *end = strstr((char *)c->in.data, "\r\n\r\n");
    if (end == NULL) return c->in.length > 8192 ? -1 : 0;
    const char *key = NULL;
    size_t key_length = 0;
    for (char *line = strstr((char *)c->in.data, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) {
            key = line + 20;
            while (*key == ' ') key++;
            key_length = (size_t)(strstr(key, "\r\n") - key);
        }
    }
    if (key == NULL || key_length > 64) return -1;
    char material[128];
    memcpy(material, key, key_length);
    memcpy(material + key_length, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char digest[20];
    char accept[32], response[256];
    sha1((unsigned char *)material, key_length + 36, digest);
    base64(digest, 20, accept);
    int response_length = snprintf(response, sizeof response,
                                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    append(&c->out, response, (size_t)response_length);
    consume(&c->in, (size_t)(end + 4 - (char *)c->in.data));
    c->open = 1;
    c->next = open_list;
    if (open_list) open_list->previous = c;
    open_list = c;
    return 1;
}

/* Parse whole frames out of c->in; echo (or broadcast) each. Returns -1 to drop c. */
static int handle_frames(struct conn *c)
{
    for (;;) {
        unsigned char *p = c->in.data;
        size_t have = c->in.length;
        if (have < 2) return 0;
        size_t head_length = 2;
        uint64_t length = p[1] & 0x7f;
        if (length == 126) head_length = 4;
        if (length == 127) head_length = 10;
        if (!(p[1] & 0x80)) return -1; /* RFC 6455 5.1: client frames must be masked */
        head_length += 4;
        if (have < head_length) return 0;
        if (length == 126) length = (uint64_t)p[2] << 8 | p[3];
        else if (length == 127) {
            length = 0;
            for (int i = 2; i < 10; i++) length = length << 8 | p[i];
        }
        if (length > (1u << 30)) return -1;
        if (have < head_length + length) return 0;
        unsigned char *mask = p + head_length - 4, *payload = p + head_length;
        unmask(payload, length, mask);
        int opcode = p[0] & 0x0f;
        if (opcode == 8) {
            queue_frame(c, 0x88, payload, length < 2 ? length : 2);
            c->closing = 1;
            c->in.length = 0;
            return 0;
        } else if (opcode == 9) {
            queue_frame(c, 0x8a, payload, length);
        } else if (opcode < 8) {
            if (broadcast_mode) {
                /* One write per peer. A failing peer is not dropped here (it may still be
                 * listed in this epoll_wait batch): epoll reports its error next time round. */
                for (struct conn *other = open_list; other; other = other->next) {
                    queue_frame(other, p[0] & 0x8f, payload, length);
                    if (other != c) write_without_drop(other);
                }
            } else {
                queue_frame(c, p[0] & 0x8f, payload, length);
            }
        }
        consume(&c->in, head_length + length);
    }
}

static void on_event(struct conn *c, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        /* Read straight into the buffer; it grows with the frames it has to hold. */
        reserve(&c->in, 16384);
        ssize_t received = read(c->fd, c->in.data + c->in.length, c->in.capacity - c->in.length);
        if (received == 0 || (received < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(c);
            return;
        }
        if (received > 0) {
            c->in.length += (size_t)received;
            int status = c->open ? 1 : handle_handshake(c);
            if (status < 0 || (status > 0 && handle_frames(c) < 0)) {
                drop(c);
                return;
            }
        }
    }
    flush(c);
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--broadcast")) broadcast_mode = 1;
        else {
            fprintf(stderr, "usage: c_echo --port P [--broadcast]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 1024) < 0) {
        perror("c_echo: bind/listen");
        return 1;
    }
    epoll_fd = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event events[256];
    for (;;) {
        int ready = epoll_wait(epoll_fd, events, 256, -1);
        for (int i = 0; i < ready; i++) {
            if (events[i].data.ptr == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event client_event = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &client_event);
                }
            } else {
                on_event(events[i].data.ptr, events[i].events);
            }
        }
    }
}
