/* DirectWriter (Linux only), used by framewire.aio.ws.socket_poller for the sockets the Poller
 * (poller.c) reads, and SENT, what WebSocket.send() returns when send_message() wrote the frame.
 * No Python twin: without them every write goes through the asyncio transport.
 */

#include "speedups.h"

#ifdef __linux__

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <structmember.h>

/* ------------------------------------------------------------------------------------------
 * DirectWriter(fd, transport): writes with one send() while the transport has nothing queued,
 * and hands anything it cannot send at once (and every error) to transport.write(), which
 * queues it, reports the error, or drops it once the transport is closing. So bytes stay in
 * order, and the transport keeps its flow control and error handling.
 *
 * send_message(connection, message) frames and sends a small message in one call: the
 * commonest send of an open server connection, which would otherwise run about 80 bytecodes.
 */

typedef fw_DirectWriterObject DirectWriterObject; /* declared in speedups.h for tls_link.c */

static PyObject *str_write = NULL;
static PyObject *str_get_write_buffer_size = NULL;

static PyObject *
writer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    int fd;
    PyObject *transport;
    PyObject *tls = NULL;
    static char *keywords[] = {"fd", "transport", "tls", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO|O:DirectWriter", keywords, &fd, &transport,
                                     &tls)) {
        return NULL;
    }
    if (str_write == NULL) {
        str_write = PyUnicode_InternFromString("write");
        str_get_write_buffer_size = PyUnicode_InternFromString("get_write_buffer_size");
        if (str_write == NULL || str_get_write_buffer_size == NULL) {
            return NULL;
        }
    }
    DirectWriterObject *self = (DirectWriterObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->transport = Py_NewRef(transport);
        self->fd = fd;
        self->maybe_queued = 1; /* the handshake response may still be queued */
        if (fw_tls_parts_set(&self->tls, tls) < 0) {
            Py_DECREF(self);
            return NULL;
        }
    }
    return (PyObject *)self;
}

static int
writer_traverse(DirectWriterObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->transport);
    return fw_tls_parts_traverse(&self->tls, visit, arg);
}

static int
writer_clear(DirectWriterObject *self)
{
    Py_CLEAR(self->transport);
    fw_tls_parts_clear(&self->tls);
    return 0;
}

static void
writer_dealloc(DirectWriterObject *self)
{
    PyObject_GC_UnTrack(self);
    writer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
transport_write(DirectWriterObject *self, PyObject *data)
{
    self->maybe_queued = 1;
    return PyObject_CallMethodOneArg(self->transport, str_write, data);
}

/* 1 when nothing waits in the transport's buffer (so a send() now keeps bytes in order), 0 when
 * something may, -1 on error. The transport is asked only after it was handed bytes. */
static int
nothing_queued(DirectWriterObject *self)
{
    if (self->tls.ssl_object != NULL) {
        return fw_tls_nothing_queued(self);
    }
    if (self->transport == NULL || self->stopped) {
        return 0;
    }
    if (self->maybe_queued) {
        PyObject *size = PyObject_CallMethodNoArgs(self->transport, str_get_write_buffer_size);
        if (size == NULL) {
            return -1;
        }
        int queued = PyObject_IsTrue(size);
        Py_DECREF(size);
        if (queued) {
            return queued < 0 ? -1 : 0;
        }
        self->maybe_queued = 0;
    }
    return 1;
}

/* Hand transport.write() the bytes of the iovecs past the first `sent`. */
static PyObject *
transport_write_rest(DirectWriterObject *self, const struct iovec *iov, int count, size_t sent)
{
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        total += iov[i].iov_len;
    }
    PyObject *rest = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(total - sent));
    if (rest == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(rest);
    for (int i = 0; i < count; i++) {
        size_t skip = sent < iov[i].iov_len ? sent : iov[i].iov_len;
        sent -= skip;
        memcpy(out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        out += iov[i].iov_len - skip;
    }
    PyObject *result = transport_write(self, rest);
    Py_DECREF(rest);
    return result;
}

static PyObject *
writer_write(DirectWriterObject *self, PyObject *data)
{
    if (self->transport == NULL) {
        Py_RETURN_NONE;
    }
    int direct = nothing_queued(self);
    if (direct <= 0) {
        return direct < 0 ? NULL : transport_write(self, data);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (self->tls.ssl_object != NULL) {
        PyObject *result = fw_tls_send(self, view.buf, view.len, data);
        PyBuffer_Release(&view);
        return result;
    }
    ssize_t sent = view.len ? send(self->fd, view.buf, (size_t)view.len, MSG_NOSIGNAL) : 0;
    Py_ssize_t length = view.len;
    PyBuffer_Release(&view);
    if (sent == length) {
        Py_RETURN_NONE;
    }
    if (sent <= 0) {
        return transport_write(self, data); /* EAGAIN: it queues; an error: it reports */
    }
    /* A view of the rest, not a copy: the transport copies it into its buffer anyway (a 1 MiB
     * message would otherwise be copied twice). */
    PyObject *whole = PyMemoryView_FromObject(data);
    if (whole == NULL) {
        return NULL;
    }
    PyObject *rest = PySequence_GetSlice(whole, sent, length);
    Py_DECREF(whole);
    if (rest == NULL) {
        return NULL;
    }
    PyObject *result = transport_write(self, rest);
    Py_DECREF(rest);
    return result;
}

/* 1 when `connection` may frame a data message at once (its frame_now_ok flag). */
static int
may_frame_now(PyObject *connection)
{
    return fw_connection_flag(connection, FW_FRAME_NOW_OK);
}

#define SMALL_FRAME 2048 /* payloads up to this are copied after their header and sent at once */

/* send_message()'s frame over TLS, encrypted as one record. */
static PyObject *
send_message_tls(DirectWriterObject *self, const unsigned char *header, size_t header_length,
                 const char *payload, Py_ssize_t length)
{
    char small[4 + SMALL_FRAME];
    PyObject *owner = NULL; /* a bytes object holding the frame, when it is too large for small */
    char *frame = small;
    if (length > SMALL_FRAME) {
        owner = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)header_length + length);
        if (owner == NULL) {
            return NULL;
        }
        frame = PyBytes_AS_STRING(owner);
    }
    memcpy(frame, header, header_length);
    memcpy(frame + header_length, payload, (size_t)length);
    PyObject *result = fw_tls_send(self, frame, (Py_ssize_t)header_length + length, owner);
    Py_XDECREF(owner);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    Py_RETURN_TRUE;
}

static PyObject *
writer_send_message(DirectWriterObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "send_message() takes a connection and a message");
        return NULL;
    }
    /* Whether this connection may send at once first: a message declined here is encoded again
     * by the general path, so encode only what goes out. */
    int ready = nothing_queued(self);
    if (ready > 0) {
        ready = may_frame_now(args[0]);
    }
    if (ready <= 0) {
        return ready < 0 ? NULL : Py_NewRef(Py_False);
    }
    PyObject *message = args[1];
    unsigned char header[4];
    const char *payload;
    Py_ssize_t length;
    if (PyBytes_CheckExact(message)) {
        header[0] = 0x82;
        payload = PyBytes_AS_STRING(message);
        length = PyBytes_GET_SIZE(message);
    }
    else if (PyUnicode_CheckExact(message)) {
        header[0] = 0x81;
        payload = PyUnicode_AsUTF8AndSize(message, &length);
        if (payload == NULL) {
            PyErr_Clear(); /* a lone surrogate: the general path raises, when awaited */
            Py_RETURN_FALSE;
        }
    }
    else {
        Py_RETURN_FALSE;
    }
    if (length >= 65536) {
        Py_RETURN_FALSE; /* the general path sends large payloads without copying them */
    }
    struct iovec iov[2];
    iov[0].iov_base = header;
    if (length < 126) {
        header[1] = (unsigned char)length;
        iov[0].iov_len = 2;
    }
    else {
        header[1] = 126;
        header[2] = (unsigned char)(length >> 8);
        header[3] = (unsigned char)length;
        iov[0].iov_len = 4;
    }
    iov[1].iov_base = (void *)payload;
    iov[1].iov_len = (size_t)length;
    if (self->tls.ssl_object != NULL) {
        return send_message_tls(self, header, iov[0].iov_len, payload, length);
    }
    int count = 2;
    ssize_t sent;
    unsigned char frame[4 + SMALL_FRAME];
    if (length <= SMALL_FRAME) {
        /* One send() of a copy: for a small frame the copy costs less than sendmsg()'s
         * handling of two iovecs in the kernel (benchmarks/run.py, 64-byte round trips). */
        memcpy(frame, header, iov[0].iov_len);
        memcpy(frame + iov[0].iov_len, payload, (size_t)length);
        iov[0].iov_base = frame;
        iov[0].iov_len += (size_t)length;
        count = 1;
        sent = send(self->fd, frame, iov[0].iov_len, MSG_NOSIGNAL);
    }
    else {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
        sent = sendmsg(self->fd, &msg, MSG_NOSIGNAL);
    }
    if ((size_t)sent != iov[0].iov_len + (count == 2 ? iov[1].iov_len : 0)) {
        /* EAGAIN or a short send: the transport queues the rest; an error: it reports it. */
        PyObject *result = transport_write_rest(self, iov, count, sent < 0 ? 0 : (size_t)sent);
        if (result == NULL) {
            return NULL;
        }
        Py_DECREF(result);
    }
    Py_RETURN_TRUE;
}

static PyObject *
writer_stop(DirectWriterObject *self, PyObject *unused)
{
    (void)unused;
    self->stopped = 1;
    Py_RETURN_NONE;
}

static PyMethodDef writer_methods[] = {
    {"write", (PyCFunction)writer_write, METH_O,
     "write(data): send data now if nothing is queued, else (and for the rest) "
     "transport.write()."},
    {"send_message", (PyCFunction)(void (*)(void))writer_send_message, METH_FASTCALL,
     "send_message(connection, message): frame str or bytes message (under 64 KiB) and send it "
     "now, as Connection.frame_now() allows; True when sent (or handed to the transport), False "
     "when the general path must send it."},
    {"stop", (PyCFunction)writer_stop, METH_NOARGS,
     "stop(): from now on every write goes through transport.write()."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject fw_DirectWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.DirectWriter",
    .tp_doc = "DirectWriter(fd, transport, tls=None): writes to the socket of transport, in order; "
               "with tls (ssl_object, incoming, outgoing, send_outgoing, plain_transport) it "
               "encrypts with asyncio's TLS objects.",
    .tp_basicsize = sizeof(DirectWriterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = writer_new,
    .tp_traverse = (traverseproc)writer_traverse,
    .tp_clear = (inquiry)writer_clear,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_methods = writer_methods,
};


/* ------------------------------------------------------------------------------------------
 * SENT: a coroutine that has already returned None. WebSocket.send() returns it when the frame
 * went out during the call, so `await ws.send(message)` costs no coroutine frame; it also works
 * with asyncio.create_task() and ensure_future() (collections.abc.Coroutine recognizes it).
 */

static PyObject *
completed_await(PyObject *self)
{
    return Py_NewRef(self);
}

static PySendResult
completed_am_send(PyObject *self, PyObject *arg, PyObject **result)
{
    (void)self;
    (void)arg;
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

static PyObject *
completed_next(PyObject *self)
{
    (void)self;
    return NULL; /* finished: StopIteration(None) */
}

static PyObject *
completed_send(PyObject *self, PyObject *value)
{
    (void)self;
    (void)value;
    PyErr_SetNone(PyExc_StopIteration);
    return NULL;
}

static PyObject *
completed_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return fw_raise_thrown(args, nargs);
}

static PyObject *
completed_close(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_NONE;
}

static PyMethodDef completed_methods[] = {
    {"send", (PyCFunction)completed_send, METH_O, "send(value): raise StopIteration(None)."},
    {"throw", (PyCFunction)(void (*)(void))completed_throw, METH_FASTCALL,
     "throw(exception): raise it."},
    {"close", (PyCFunction)completed_close, METH_NOARGS, "close(): nothing to do."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods completed_as_async = {
    .am_await = completed_await,
    .am_send = completed_am_send,
};

PyTypeObject fw_CompletedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.Completed",
    .tp_doc = "A coroutine that has already returned None (framewire._speedups.SENT).",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_as_async = &completed_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = completed_next,
    .tp_methods = completed_methods,
};

#endif /* __linux__ */
