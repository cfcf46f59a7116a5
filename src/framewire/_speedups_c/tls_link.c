/* TLS records for the Poller (poller.c) and the DirectWriter (direct_writer.c), Linux only.
 *
 * asyncio's SSLProtocol moves every record through Python: the transport's read handle,
 * get_buffer(), buffer_updated(), _do_read() and the app protocol's callbacks on the way in;
 * write(), _write_appdata(), _do_write(), _process_outgoing() and the TCP transport's write()
 * on the way out. Per 64-byte round trip that is about 10 µs of the server's 16 (benchmarks/
 * run.py, wss rows). Once the handshake is done, the Poller can read the socket instead and
 * hand the records to the same ssl object through the same memory BIOs, and the DirectWriter
 * can encrypt with it and send the records itself. The SSLProtocol never sees those records,
 * and its state stays valid: it reads and writes the same objects after PolledSocket.stop(),
 * to close (aio/ws/socket_poller.py).
 *
 * Order is the rule that makes this safe. The DirectWriter sends records itself only when
 * nothing waits in the TLS transport nor under it; anything it cannot send at once goes to the
 * TCP transport (records) or the TLS transport (plaintext), after what they hold.
 */

#include "speedups.h"

#ifdef __linux__

#include <errno.h>
#include <sys/socket.h>

/* Plaintext is encrypted and sent in pieces of this size: a 1 MiB message then never makes a
 * 1 MiB bytes object of records. */
#define TLS_SEND_PIECE (256 * 1024)

static PyObject *str_read = NULL;
static PyObject *str_write = NULL;
static PyObject *str_pending = NULL;
static PyObject *str_get_write_buffer_size = NULL;
static PyObject *want_read_error = NULL; /* ssl.SSLWantReadError */

static int
intern_names(void)
{
    if (want_read_error != NULL) {
        return 0;
    }
    str_read = PyUnicode_InternFromString("read");
    str_write = PyUnicode_InternFromString("write");
    str_pending = PyUnicode_InternFromString("pending");
    str_get_write_buffer_size = PyUnicode_InternFromString("get_write_buffer_size");
    if (!str_read || !str_write || !str_pending || !str_get_write_buffer_size) {
        return -1;
    }
    PyObject *ssl = PyImport_ImportModule("ssl");
    if (ssl == NULL) {
        return -1;
    }
    want_read_error = PyObject_GetAttrString(ssl, "SSLWantReadError");
    Py_DECREF(ssl);
    return want_read_error == NULL ? -1 : 0;
}

int
fw_tls_parts_set(fw_tls_parts *tls, PyObject *parts)
{
    if (parts == NULL || parts == Py_None) {
        return 0;
    }
    if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 5) {
        PyErr_SetString(PyExc_TypeError, "DirectWriter(): tls is (ssl_object, incoming, "
                                         "outgoing, send_outgoing, plain_transport)");
        return -1;
    }
    if (intern_names() < 0) {
        return -1;
    }
    tls->ssl_object = Py_NewRef(PyTuple_GET_ITEM(parts, 0));
    tls->incoming = Py_NewRef(PyTuple_GET_ITEM(parts, 1));
    tls->outgoing = Py_NewRef(PyTuple_GET_ITEM(parts, 2));
    tls->send_outgoing = Py_NewRef(PyTuple_GET_ITEM(parts, 3));
    tls->plain = Py_NewRef(PyTuple_GET_ITEM(parts, 4));
    tls->decrypt = PyObject_GetAttr(tls->ssl_object, str_read);
    tls->encrypt = PyObject_GetAttr(tls->ssl_object, str_write);
    tls->feed = PyObject_GetAttr(tls->incoming, str_write);
    tls->take_records = PyObject_GetAttr(tls->outgoing, str_read);
    return tls->decrypt && tls->encrypt && tls->feed && tls->take_records ? 0 : -1;
}

void
fw_tls_parts_clear(fw_tls_parts *tls)
{
    Py_CLEAR(tls->ssl_object);
    Py_CLEAR(tls->incoming);
    Py_CLEAR(tls->outgoing);
    Py_CLEAR(tls->send_outgoing);
    Py_CLEAR(tls->plain);
    Py_CLEAR(tls->decrypt);
    Py_CLEAR(tls->encrypt);
    Py_CLEAR(tls->feed);
    Py_CLEAR(tls->take_records);
}

int
fw_tls_parts_traverse(fw_tls_parts *tls, visitproc visit, void *arg)
{
    Py_VISIT(tls->ssl_object);
    Py_VISIT(tls->incoming);
    Py_VISIT(tls->outgoing);
    Py_VISIT(tls->send_outgoing);
    Py_VISIT(tls->plain);
    Py_VISIT(tls->decrypt);
    Py_VISIT(tls->encrypt);
    Py_VISIT(tls->feed);
    Py_VISIT(tls->take_records);
    return 0;
}

/* An int result of `object.name()` (or of the attribute, when `call` is 0); -1 on error. */
static Py_ssize_t
size_from(PyObject *object, PyObject *name, int call)
{
    PyObject *value = call ? PyObject_CallMethodNoArgs(object, name)
                           : PyObject_GetAttr(object, name);
    if (value == NULL) {
        return -1;
    }
    Py_ssize_t size = PyNumber_AsSsize_t(value, PyExc_OverflowError);
    Py_DECREF(value);
    return size;
}

int
fw_tls_nothing_queued(fw_DirectWriterObject *writer)
{
    if (writer->transport == NULL || writer->stopped || writer->tls.plain == NULL) {
        return 0;
    }
    if (writer->maybe_queued) {
        /* The TLS transport's size counts its plaintext backlog and the records in the
         * outgoing BIO; the TCP transport's, the records it has not sent. */
        Py_ssize_t size = size_from(writer->transport, str_get_write_buffer_size, 1);
        if (size == 0) {
            size = size_from(writer->tls.plain, str_get_write_buffer_size, 1);
        }
        if (size != 0) {
            return size < 0 ? -1 : 0;
        }
        writer->maybe_queued = 0;
    }
    return 1;
}

/* bytes[:length] for a call that only reads it: a copy when small (one object, where a
 * memoryview is two), else a read-only view. */
static PyObject *
small_copy_or_view(const char *bytes, Py_ssize_t length)
{
    if (length <= 4096) {
        return PyBytes_FromStringAndSize(bytes, length);
    }
    return PyMemoryView_FromMemory((char *)bytes, length, PyBUF_READ);
}

/* Give plaintext the DirectWriter could not encrypt now to the TLS transport, which queues it
 * after what it holds (or reports why it cannot). */
static PyObject *
plaintext_to_transport(fw_DirectWriterObject *writer, const char *bytes, Py_ssize_t length,
                       PyObject *data)
{
    writer->maybe_queued = 1;
    PyObject *copy = NULL;
    if (data == NULL) {
        /* The TLS transport keeps what it is given: it must own a copy. */
        data = copy = PyBytes_FromStringAndSize(bytes, length);
        if (copy == NULL) {
            return NULL;
        }
    }
    PyObject *result = PyObject_CallMethodOneArg(writer->transport, str_write, data);
    Py_XDECREF(copy);
    return result;
}

/* Send `records` (bytes); what the socket does not take goes to the TCP transport. 1 when all
 * went out, 0 when some was queued, -1 on error. */
static int
send_records(fw_DirectWriterObject *writer, PyObject *records)
{
    Py_ssize_t size = PyBytes_GET_SIZE(records);
    ssize_t sent = size ? send(writer->fd, PyBytes_AS_STRING(records), (size_t)size,
                               MSG_NOSIGNAL)
                        : 0;
    if (sent == size) {
        return 1;
    }
    writer->maybe_queued = 1;
    PyObject *rest = sent <= 0 ? Py_NewRef(records) /* EAGAIN: it queues; an error: it reports */
                               : PyBytes_FromStringAndSize(PyBytes_AS_STRING(records) + sent,
                                                           size - sent);
    if (rest == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallMethodOneArg(writer->tls.plain, str_write, rest);
    Py_DECREF(rest);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

PyObject *
fw_tls_send(fw_DirectWriterObject *writer, const char *bytes, Py_ssize_t length, PyObject *data)
{
    Py_ssize_t offset = 0;
    while (offset < length) {
        Py_ssize_t piece = length - offset < TLS_SEND_PIECE ? length - offset : TLS_SEND_PIECE;
        PyObject *view = small_copy_or_view(bytes + offset, piece);
        if (view == NULL) {
            return NULL;
        }
        /* Into a memory BIO a write is whole or fails; on failure (the TLS object wants to
         * read first, or is broken) the TLS transport retries it in order or reports it. */
        PyObject *count = PyObject_CallOneArg(writer->tls.encrypt, view);
        Py_DECREF(view);
        if (count == NULL) {
            PyErr_Clear();
            return plaintext_to_transport(writer, bytes + offset, length - offset,
                                          offset == 0 ? data : NULL);
        }
        Py_DECREF(count);
        offset += piece;
        PyObject *records = PyObject_CallNoArgs(writer->tls.take_records);
        if (records == NULL) {
            return NULL;
        }
        int whole = PyBytes_Check(records) ? send_records(writer, records) : -1;
        if (whole < 0 && !PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "MemoryBIO.read() did not return bytes");
        }
        Py_DECREF(records);
        if (whole < 0) {
            return NULL;
        }
        if (whole == 0 && offset < length) {
            return plaintext_to_transport(writer, bytes + offset, length - offset, NULL);
        }
    }
    Py_RETURN_NONE;
}

int
fw_tls_feed(fw_DirectWriterObject *writer, const char *bytes, Py_ssize_t length)
{
    PyObject *view = small_copy_or_view(bytes, length);
    if (view == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallOneArg(writer->tls.feed, view);
    Py_DECREF(view);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

Py_ssize_t
fw_tls_decrypt(fw_DirectWriterObject *writer, char *out, Py_ssize_t capacity, PyObject *out_view,
               PyObject *out_capacity, int *closed)
{
    Py_ssize_t offset = 0;
    *closed = 0;
    while (offset < capacity) {
        if (offset > 0) {
            /* The last read took a whole record (it did not fill `out`): with no more bytes
             * of records, asking again would only raise SSLWantReadError. */
            Py_ssize_t pending = size_from(writer->tls.incoming, str_pending, 0);
            if (pending <= 0) {
                return pending < 0 ? -1 : offset;
            }
        }
        PyObject *view, *wanted;
        if (offset == 0) {
            view = Py_NewRef(out_view);
            wanted = Py_NewRef(out_capacity);
        }
        else {
            view = PyMemoryView_FromMemory(out + offset, capacity - offset, PyBUF_WRITE);
            wanted = PyLong_FromSsize_t(capacity - offset);
        }
        PyObject *args[2] = {wanted, view};
        PyObject *count = view && wanted ? PyObject_Vectorcall(writer->tls.decrypt, args, 2, NULL)
                                         : NULL;
        Py_XDECREF(view);
        Py_XDECREF(wanted);
        if (count == NULL) {
            if (PyErr_ExceptionMatches(want_read_error)) {
                PyErr_Clear(); /* the rest of a record is still on its way */
                return offset;
            }
            return -1;
        }
        Py_ssize_t got = PyLong_AsSsize_t(count);
        Py_DECREF(count);
        if (got < 0) {
            return PyErr_Occurred() ? -1 : offset;
        }
        if (got == 0) {
            *closed = 1; /* close_notify: ssl returns 0 bytes for it */
            return offset;
        }
        offset += got;
    }
    return offset;
}

int
fw_tls_pending(fw_DirectWriterObject *writer)
{
    Py_ssize_t pending = size_from(writer->tls.incoming, str_pending, 0);
    if (pending == 0) {
        pending = size_from(writer->tls.ssl_object, str_pending, 1);
    }
    return pending < 0 ? -1 : pending > 0;
}

int
fw_tls_flush(fw_DirectWriterObject *writer)
{
    Py_ssize_t pending = size_from(writer->tls.outgoing, str_pending, 0);
    if (pending <= 0) {
        return pending < 0 ? -1 : 0;
    }
    /* Rare: the SSLProtocol sends them in order and keeps its flow control. */
    writer->maybe_queued = 1;
    PyObject *result = PyObject_CallNoArgs(writer->tls.send_outgoing);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

#endif /* __linux__ */
