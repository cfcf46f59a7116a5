/* The common WebSocket upgrade request in one call: parse_upgrade_request(), twin of
 * framewire.sansio.upgrade_request.py_parse_upgrade_request. It parses, checks and computes
 * Sec-WebSocket-Accept; anything unusual returns None and goes the general way. */

#include "speedups.h"

#include <stdint.h>

const char fw_parse_upgrade_request_doc[] = PyDoc_STR(
"parse_upgrade_request(data, max_request_line, max_head_size, max_header_line, max_headers, /)\n"
"--\n"
"\n"
"Return (target, fields, index, accept, head_length) for a whole, valid, plain WebSocket\n"
"upgrade request at the start of data, or None for anything else.");

/* ---------------------------------------------------------------- SHA-1 (FIPS 180-4) */

static uint32_t
rotate_left(uint32_t value, int bits)
{
    return (value << bits) | (value >> (32 - bits));
}

static void
sha1_block(uint32_t state[5], const unsigned char *block)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++) {
        w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
               (uint32_t)block[4 * t + 2] << 8 | (uint32_t)block[4 * t + 3];
    }
    for (int t = 16; t < 80; t++) {
        w[t] = rotate_left(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        }
        else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        }
        else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        }
        else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t next = rotate_left(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rotate_left(b, 30);
        b = a;
        a = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
}

/* SHA-1 of a message of at most 119 bytes (two blocks with the padding). */
static void
sha1_short(const unsigned char *message, size_t length, unsigned char digest[20])
{
    unsigned char padded[128] = {0};
    uint32_t state[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t blocks = length + 9 <= 64 ? 1 : 2;
    uint64_t bits = (uint64_t)length * 8;

    memcpy(padded, message, length);
    padded[length] = 0x80;
    for (int i = 0; i < 8; i++) {
        padded[blocks * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
    }
    for (size_t i = 0; i < blocks; i++) {
        sha1_block(state, padded + 64 * i);
    }
    for (int i = 0; i < 20; i++) {
        digest[i] = (unsigned char)(state[i / 4] >> (24 - 8 * (i % 4)));
    }
}

/* ---------------------------------------------------------------- the request */

static const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; /* RFC 6455 1.3 */
#define KEY_LENGTH 24                                                /* base64 of 16 bytes */
#define ACCEPT_LENGTH 28                                             /* base64 of 20 bytes */

/* Sec-WebSocket-Accept for a 24-byte key, as 28 ASCII bytes. */
static void
accept_value(const unsigned char *key, char accept[ACCEPT_LENGTH])
{
    unsigned char message[KEY_LENGTH + sizeof GUID - 1], digest[21] = {0};
    memcpy(message, key, KEY_LENGTH);
    memcpy(message + KEY_LENGTH, GUID, sizeof GUID - 1);
    sha1_short(message, sizeof message, digest);
    for (int i = 0, out = 0; i < 21; i += 3, out += 4) {
        uint32_t group = (uint32_t)digest[i] << 16 | (uint32_t)digest[i + 1] << 8 | digest[i + 2];
        accept[out] = BASE64[group >> 18 & 63];
        accept[out + 1] = BASE64[group >> 12 & 63];
        accept[out + 2] = BASE64[group >> 6 & 63];
        accept[out + 3] = BASE64[group & 63];
    }
    accept[ACCEPT_LENGTH - 1] = '='; /* 20 bytes: the last group has one byte of padding */
}

/* The lower-case names looked up in the parsed index, made once. */
enum { HOST, TRANSFER_ENCODING, CONTENT_LENGTH, UPGRADE, CONNECTION, VERSION, KEY, NAMES };
static PyObject *names[NAMES];
static const char *const name_texts[NAMES] = {
    "host", "transfer-encoding", "content-length", "upgrade",
    "connection", "sec-websocket-version", "sec-websocket-key",
};

static int
make_names(void)
{
    for (int i = 0; i < NAMES; i++) {
        if (names[i] == NULL && (names[i] = PyUnicode_InternFromString(name_texts[i])) == NULL) {
            return -1;
        }
    }
    return 0;
}

/* The index's list of values of a header, borrowed; NULL when absent (an error is set only
 * if the lookup itself failed). */
static PyObject *
values_of(PyObject *index, int name)
{
    return PyDict_GetItemWithError(index, names[name]);
}

/* The latin-1 bytes of a str value (the parser makes only one-byte str). */
static const unsigned char *
text_of(PyObject *value, Py_ssize_t *length)
{
    *length = PyUnicode_GET_LENGTH(value);
    return PyUnicode_1BYTE_DATA(value);
}

static int
equals_lower(const unsigned char *text, Py_ssize_t length, const char *lower)
{
    Py_ssize_t i = 0;
    for (; i < length && lower[i] != '\0'; i++) {
        if (Py_TOLOWER(text[i]) != (unsigned char)lower[i]) {
            return 0;
        }
    }
    return i == length && lower[i] == '\0';
}

/* Whether a comma-separated token list (RFC 9110 5.6.1) holds ``token``, case-insensitively. */
static int
has_token(PyObject *values, const char *token)
{
    for (Py_ssize_t v = 0; v < PyList_GET_SIZE(values); v++) {
        Py_ssize_t length;
        const unsigned char *text = text_of(PyList_GET_ITEM(values, v), &length);
        Py_ssize_t start = 0;
        while (start <= length) {
            Py_ssize_t end = start;
            while (end < length && text[end] != ',') {
                end++;
            }
            Py_ssize_t first = start, last = end;
            while (first < last && (text[first] == ' ' || text[first] == '\t')) {
                first++;
            }
            while (last > first && (text[last - 1] == ' ' || text[last - 1] == '\t')) {
                last--;
            }
            if (equals_lower(text + first, last - first, token)) {
                return 1;
            }
            start = end + 1;
        }
    }
    return 0;
}

static int
is_base64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* The one Sec-WebSocket-Key value if it is 22 base64 characters and "==", else NULL. */
static const unsigned char *
plain_key(PyObject *values)
{
    if (values == NULL || PyList_GET_SIZE(values) != 1) {
        return NULL;
    }
    Py_ssize_t length;
    const unsigned char *key = text_of(PyList_GET_ITEM(values, 0), &length);
    if (length != KEY_LENGTH || key[22] != '=' || key[23] != '=') {
        return NULL;
    }
    for (int i = 0; i < 22; i++) {
        if (!is_base64_char(key[i])) {
            return NULL;
        }
    }
    return key;
}

/* The Sec-WebSocket-Key of a parsed head that is a plain upgrade request, else NULL. */
static const unsigned char *
upgrade_key(PyObject *index)
{
    PyObject *host = values_of(index, HOST), *upgrade = values_of(index, UPGRADE);
    PyObject *connection = values_of(index, CONNECTION), *version = values_of(index, VERSION);
    Py_ssize_t length;

    if (host == NULL || PyList_GET_SIZE(host) != 1 || values_of(index, TRANSFER_ENCODING) ||
        values_of(index, CONTENT_LENGTH) || upgrade == NULL || PyList_GET_SIZE(upgrade) != 1 ||
        connection == NULL || version == NULL || PyList_GET_SIZE(version) != 1) {
        return NULL;
    }
    const unsigned char *text = text_of(PyList_GET_ITEM(upgrade, 0), &length);
    if (!equals_lower(text, length, "websocket") || !has_token(connection, "upgrade")) {
        return NULL;
    }
    text = text_of(PyList_GET_ITEM(version, 0), &length);
    if (length != 2 || text[0] != '1' || text[1] != '3') {
        return NULL;
    }
    return plain_key(values_of(index, KEY));
}

/* Where "\r\n\r\n" starts in data[from:length], or -1. */
static Py_ssize_t
find_blank_line(const unsigned char *data, Py_ssize_t from, Py_ssize_t length)
{
    for (Py_ssize_t i = from; i + 3 < length; i++) {
        if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') {
            return i;
        }
    }
    return -1;
}

/* The request line "GET <target> HTTP/1.1": the target's length, or -1 if it is not one. */
static Py_ssize_t
get_target_length(const unsigned char *data, Py_ssize_t length, Py_ssize_t max_request_line,
                  Py_ssize_t *line_end)
{
    static const char suffix[] = " HTTP/1.1\r\n";
    const Py_ssize_t suffix_length = sizeof suffix - 1;
    if (length < 4 || memcmp(data, "GET ", 4) != 0) {
        return -1;
    }
    Py_ssize_t target = 0;
    while (4 + target < length && data[4 + target] >= 0x21 && data[4 + target] <= 0x7e) {
        target++;
    }
    Py_ssize_t end = 4 + target + suffix_length;
    if (target == 0 || end > length || end - 2 > max_request_line ||
        memcmp(data + 4 + target, suffix, (size_t)suffix_length) != 0) {
        return -1;
    }
    *line_end = end;
    return target;
}

PyObject *
fw_parse_upgrade_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t limits[4]; /* max_request_line, max_head_size, max_header_line, max_headers */
    PyObject *fields = NULL, *index = NULL, *result = NULL;

    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "parse_upgrade_request() takes 5 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (fw_ssize_args(args + 1, 4, limits) < 0 || make_names() < 0 ||
        PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t fields_start = 0;
    Py_ssize_t target = get_target_length(data, view.len, limits[0], &fields_start);
    /* No field lines at all is no upgrade (no Host): find_blank_line() starts at the CRLF. */
    Py_ssize_t blank = target < 0 ? -1 : find_blank_line(data, fields_start - 2, view.len);
    if (blank < fields_start || blank + 4 > limits[1]) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    int parsed = fw_parse_fields(data, fields_start, blank, limits[2], limits[3], &fields, &index);
    if (parsed <= 0) {
        result = parsed == 0 ? Py_NewRef(Py_None) : NULL;
        goto done;
    }
    const unsigned char *key = upgrade_key(index);
    if (key == NULL) {
        result = PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        goto done;
    }
    char accept[ACCEPT_LENGTH];
    accept_value(key, accept);
    result = Py_BuildValue("(s#OOy#n)", (const char *)data + 4, target, fields, index, accept,
                           (Py_ssize_t)ACCEPT_LENGTH, blank + 4);
done:
    Py_XDECREF(fields);
    Py_XDECREF(index);
    PyBuffer_Release(&view);
    return result;
}
