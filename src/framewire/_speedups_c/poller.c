/* Poller (Linux only), used by framewire.aio.ws.socket_poller; the DirectWriter that writes the
 * sockets it reads is in direct_writer.c. Neither has a Python twin: without them each socket
 * is read and written by its asyncio transport.
 *
 * Poller reads many sockets through one epoll instance that the loop watches as one descriptor.
 * asyncio's selector loop pays a Python-level dispatch for every ready socket (its selector's
 * event list, a handle run, the transport's _read_ready, get_buffer, buffer_updated). Here one
 * loop callback, poll(), reads every ready socket into one buffer and calls each protocol's
 * buffer_updated(n) directly. A socket registered with a receiver does not even need that when
 * a read holds only whole simple messages: they go to the receiver's Inbox from here (the
 * twin of WebSocket.buffer_updated()'s commonest case).
 */

#include "speedups.h"

#ifdef __linux__

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 128

typedef struct {
    PyObject_HEAD
    int epoll_fd;
    Py_buffer buffer;        /* where every read lands */
    PyObject **protocols;    /* indexed by file descriptor; NULL when not registered */
    PyObject **receivers;    /* indexed by file descriptor: (connection, inbox, masked,
                                max_size), or NULL */
    PyObject **tls_writers;  /* indexed by file descriptor: the DirectWriter holding the TLS
                                objects of a TLS socket (tls_link.c), or NULL */
    PyObject *messages;      /* a list, empty between reads */
    unsigned char *paused;   /* indexed by file descriptor */
    Py_ssize_t capacity;     /* length of both arrays */
    Py_ssize_t count;        /* registered descriptors */
    int only_fd;             /* the registered descriptor when count is 1, else -1 */
    PyObject *plain_view;    /* TLS: a memoryview of the buffer's first half, where decrypted
                                bytes land, and its length as an int (made at the first TLS
                                registration) */
    PyObject *plain_size;
} PollerObject;

static PyObject *str_buffer_updated = NULL;
static PyObject *str_poller_eof = NULL;
static PyObject *str_poller_error = NULL;

/* The raised exception, normalized, with its traceback; clears the error indicator. */
static PyObject *
fetch_exception(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
}

static int
as_fd(PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "invalid file descriptor %ld", fd);
        return -1;
    }
    return (int)fd;
}

static int
intern_names(void)
{
    if (str_buffer_updated != NULL) {
        return 0;
    }
    str_buffer_updated = PyUnicode_InternFromString("buffer_updated");
    str_poller_eof = PyUnicode_InternFromString("poller_eof");
    str_poller_error = PyUnicode_InternFromString("poller_error");
    return str_buffer_updated && str_poller_eof && str_poller_error ? 0 : -1;
}

static PyObject *
poller_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *buffer;
    static char *keywords[] = {"buffer", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Poller", keywords, &buffer) ||
        intern_names() < 0) {
        return NULL;
    }
    PollerObject *self = (PollerObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->epoll_fd = -1;
    self->only_fd = -1;
    if (PyObject_GetBuffer(buffer, &self->buffer, PyBUF_WRITABLE) < 0) {
        self->buffer.obj = NULL;
        Py_DECREF(self);
        return NULL;
    }
    self->messages = PyList_New(0);
    if (self->messages == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epoll_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
poller_traverse(PollerObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t fd = 0; fd < self->capacity; fd++) {
        Py_VISIT(self->protocols[fd]);
        Py_VISIT(self->receivers[fd]);
        Py_VISIT(self->tls_writers[fd]);
    }
    Py_VISIT(self->messages);
    return 0;
}

static int
poller_clear(PollerObject *self)
{
    for (Py_ssize_t fd = 0; fd < self->capacity; fd++) {
        Py_CLEAR(self->protocols[fd]);
        Py_CLEAR(self->receivers[fd]);
        Py_CLEAR(self->tls_writers[fd]);
    }
    Py_CLEAR(self->messages);
    self->count = 0;
    self->only_fd = -1;
    return 0;
}

static void
poller_dealloc(PollerObject *self)
{
    PyObject_GC_UnTrack(self);
    poller_clear(self);
    PyMem_Free(self->protocols);
    PyMem_Free(self->receivers);
    PyMem_Free(self->tls_writers);
    Py_XDECREF(self->plain_view);
    Py_XDECREF(self->plain_size);
    PyMem_Free(self->paused);
    if (self->epoll_fd >= 0) {
        close(self->epoll_fd);
    }
    if (self->buffer.obj != NULL) {
        PyBuffer_Release(&self->buffer);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
grow(PollerObject *self, int fd)
{
    if (fd < self->capacity) {
        return 0;
    }
    Py_ssize_t capacity = self->capacity ? self->capacity : 64;
    while (capacity <= fd) {
        capacity *= 2;
    }
    PyObject **protocols = PyMem_Realloc(self->protocols, capacity * sizeof(PyObject *));
    if (protocols == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->protocols = protocols;
    PyObject **receivers = PyMem_Realloc(self->receivers, capacity * sizeof(PyObject *));
    if (receivers == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->receivers = receivers;
    PyObject **tls_writers = PyMem_Realloc(self->tls_writers, capacity * sizeof(PyObject *));
    if (tls_writers == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->tls_writers = tls_writers;
    unsigned char *paused = PyMem_Realloc(self->paused, capacity);
    if (paused == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->paused = paused;
    for (Py_ssize_t i = self->capacity; i < capacity; i++) {
        self->protocols[i] = NULL;
        self->receivers[i] = NULL;
        self->tls_writers[i] = NULL;
        self->paused[i] = 0;
    }
    self->capacity = capacity;
    return 0;
}

static int
watch(PollerObject *self, int fd, int operation)
{
    struct epoll_event event = {.events = EPOLLIN, .data = {.fd = fd}};
    if (epoll_ctl(self->epoll_fd, operation, fd, &event) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static int
registered_fd(PollerObject *self, PyObject *arg)
{
    int fd = as_fd(arg);
    if (fd < 0) {
        return -1;
    }
    if (fd >= self->capacity || self->protocols[fd] == NULL) {
        PyErr_Format(PyExc_KeyError, "file descriptor %d is not registered", fd);
        return -1;
    }
    return fd;
}

static PyObject *
poller_register(PollerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "register() takes a file descriptor, a protocol, a "
                                         "receiver and a TLS DirectWriter");
        return NULL;
    }
    PyObject *receiver = nargs >= 3 && args[2] != Py_None ? args[2] : NULL;
    PyObject *tls_writer = nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    if (tls_writer != NULL && (!PyObject_TypeCheck(tls_writer, &fw_DirectWriterType) ||
                               ((fw_DirectWriterObject *)tls_writer)->tls.ssl_object == NULL)) {
        PyErr_SetString(PyExc_TypeError, "register(): a TLS socket's writer is a DirectWriter "
                                         "made with tls");
        return NULL;
    }
    if (receiver != NULL &&
        (!PyTuple_Check(receiver) || PyTuple_GET_SIZE(receiver) != 4 ||
         !PyObject_TypeCheck(PyTuple_GET_ITEM(receiver, 1), &fw_InboxType) ||
         !PyBool_Check(PyTuple_GET_ITEM(receiver, 2)) ||
         !(PyTuple_GET_ITEM(receiver, 3) == Py_None || PyLong_Check(PyTuple_GET_ITEM(receiver, 3))))) {
        PyErr_SetString(PyExc_TypeError,
                        "register(): the receiver is (connection, Inbox, masked, max_size)");
        return NULL;
    }
    int fd = as_fd(args[0]);
    if (fd < 0) {
        return NULL;
    }
    if (fd < self->capacity && self->protocols[fd] != NULL) {
        PyErr_Format(PyExc_ValueError, "file descriptor %d is already registered", fd);
        return NULL;
    }
    if (tls_writer != NULL && self->plain_view == NULL) {
        Py_ssize_t half = self->buffer.len / 2;
        self->plain_view = PyMemoryView_FromMemory(self->buffer.buf, half, PyBUF_WRITE);
        self->plain_size = PyLong_FromSsize_t(half);
        if (self->plain_view == NULL || self->plain_size == NULL) {
            Py_CLEAR(self->plain_view);
            Py_CLEAR(self->plain_size);
            return NULL;
        }
    }
    /* epoll first: it refuses a descriptor that is not open before the arrays grow for it. */
    if (watch(self, fd, EPOLL_CTL_ADD) < 0) {
        return NULL;
    }
    if (grow(self, fd) < 0) {
        struct epoll_event unused;
        (void)epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, &unused);
        return NULL;
    }
    self->protocols[fd] = Py_NewRef(args[1]);
    self->receivers[fd] = Py_XNewRef(receiver);
    self->tls_writers[fd] = Py_XNewRef(tls_writer);
    self->paused[fd] = 0;
    self->only_fd = ++self->count == 1 ? fd : -1;
    Py_RETURN_NONE;
}

static PyObject *
poller_unregister(PollerObject *self, PyObject *arg)
{
    int fd = as_fd(arg);
    if (fd < 0) {
        return NULL;
    }
    if (fd >= self->capacity || self->protocols[fd] == NULL) {
        Py_RETURN_FALSE;
    }
    if (!self->paused[fd]) {
        /* Fails only if the descriptor was closed already, which removed it from the set. */
        struct epoll_event unused;
        (void)epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, &unused);
    }
    Py_CLEAR(self->protocols[fd]);
    Py_CLEAR(self->receivers[fd]);
    Py_CLEAR(self->tls_writers[fd]);
    self->only_fd = -1;
    if (--self->count == 1) {
        for (Py_ssize_t other = 0; other < self->capacity; other++) {
            if (self->protocols[other] != NULL) {
                self->only_fd = (int)other;
                break;
            }
        }
    }
    Py_RETURN_TRUE;
}

static PyObject *
poller_pause(PollerObject *self, PyObject *arg)
{
    int fd = registered_fd(self, arg);
    if (fd < 0) {
        return NULL;
    }
    if (!self->paused[fd]) {
        if (watch(self, fd, EPOLL_CTL_DEL) < 0) {
            return NULL;
        }
        self->paused[fd] = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *
poller_resume(PollerObject *self, PyObject *arg)
{
    int fd = registered_fd(self, arg);
    if (fd < 0) {
        return NULL;
    }
    if (self->paused[fd]) {
        if (watch(self, fd, EPOLL_CTL_ADD) < 0) {
            return NULL;
        }
        self->paused[fd] = 0;
    }
    Py_RETURN_NONE;
}

static int deliver(PyObject *protocol, PyObject *name, PyObject *arg);

/* Hand the exception being raised to ``protocol``'s poller_error(); -1 if that fails too. */
static int
deliver_raised(PyObject *protocol)
{
    PyObject *exc = fetch_exception();
    int status = exc == NULL ? -1 : deliver(protocol, str_poller_error, exc);
    Py_XDECREF(exc);
    return status;
}

/* Tell ``protocol`` what happened; an exception other than SystemExit and KeyboardInterrupt
 * goes to its poller_error(), as asyncio's transport sends a failing callback's exception to
 * its _fatal_error(). Returns -1 only to propagate an exception. */
static int
deliver(PyObject *protocol, PyObject *name, PyObject *arg)
{
    PyObject *result = arg == NULL ? PyObject_CallMethodNoArgs(protocol, name)
                                   : PyObject_CallMethodOneArg(protocol, name, arg);
    if (result != NULL) {
        Py_DECREF(result);
        return 0;
    }
    if (name == str_poller_error || PyErr_ExceptionMatches(PyExc_SystemExit) ||
        PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        return -1;
    }
    return deliver_raised(protocol);
}

/* Queue the read's messages in the receiver's Inbox when it holds whole simple messages only
 * and the connection is between frames (Connection._whole_frames_ok): 1 when done, 0 when the
 * protocol's buffer_updated() must see the read, -1 with an exception set. */
static int
receive_whole_messages(PollerObject *self, PyObject *receiver, Py_ssize_t received)
{
    PyObject *connection = PyTuple_GET_ITEM(receiver, 0);
    int ready = fw_connection_flag(connection, FW_WHOLE_FRAMES_OK);
    if (ready <= 0) {
        return ready;
    }
    PyObject *limit = PyTuple_GET_ITEM(receiver, 3);
    Py_ssize_t max_size = limit == Py_None ? -1 : PyNumber_AsSsize_t(limit, NULL); /* clipped */
    if (max_size == -1 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *messages = self->messages;
    Py_ssize_t used = fw_whole_frames((const unsigned char *)self->buffer.buf, received,
                                      PyTuple_GET_ITEM(receiver, 2) == Py_True, max_size, messages);
    if (used != received) {
        /* Something else too (or an error): buffer_updated() parses the whole read again. */
        if (PyList_SetSlice(messages, 0, PyList_GET_SIZE(messages), NULL) < 0 || used < 0) {
            return -1;
        }
        return 0;
    }
    PyObject *result = fw_inbox_take_messages(PyTuple_GET_ITEM(receiver, 1), messages, 1);
    if (result == NULL) {
        (void)PyList_SetSlice(messages, 0, PyList_GET_SIZE(messages), NULL);
        return -1;
    }
    Py_DECREF(result);
    return 1;
}

/* Hand `received` bytes now at the start of the buffer to the receiver's Inbox, or else to the
 * protocol's buffer_updated(). */
static int
deliver_read(PollerObject *self, PyObject *protocol, PyObject *receiver, Py_ssize_t received)
{
    int taken = 0;
    if (receiver != NULL) {
        Py_INCREF(receiver);
        taken = receive_whole_messages(self, receiver, received);
        Py_DECREF(receiver);
    }
    if (taken != 0) {
        return taken < 0 ? deliver_raised(protocol) : 0;
    }
    PyObject *count = PyLong_FromSsize_t(received);
    if (count == NULL) {
        return -1;
    }
    int status = deliver(protocol, str_buffer_updated, count);
    Py_DECREF(count);
    return status;
}

/* A TLS socket's read (tls_link.c): records land in the buffer's second half, and decrypted
 * bytes in its first half, as many times as it takes to empty the TLS object. `forced`: decrypt
 * what is pending even when the socket has nothing new (read_now()). */
static int
tls_read_ready(PollerObject *self, int fd, PyObject *protocol, int forced)
{
    fw_DirectWriterObject *writer = (fw_DirectWriterObject *)self->tls_writers[fd];
    char *plain = (char *)self->buffer.buf;
    Py_ssize_t half = self->buffer.len / 2;
    ssize_t received = recv(fd, plain + half, (size_t)half, 0);
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (!forced) {
            return 0;
        }
        received = -2; /* nothing new: decrypt what is pending */
    }
    /* The end of the stream comes after every byte decrypted before it, even those a pause
     * left in the ssl object: at EOF, decrypt first. */
    int at_eof = received == 0;
    if (received == -1) {
        PyErr_SetFromErrno(PyExc_OSError);
        return deliver_raised(protocol);
    }
    if (received > 0 && fw_tls_feed(writer, plain + half, received) < 0) {
        return deliver_raised(protocol);
    }
    int closed = 0;
    for (;;) {
        Py_ssize_t decrypted = fw_tls_decrypt(writer, plain, half, self->plain_view,
                                              self->plain_size, &closed);
        if (decrypted < 0) {
            return deliver_raised(protocol);
        }
        if (decrypted > 0 && deliver_read(self, protocol, self->receivers[fd], decrypted) < 0) {
            return -1;
        }
        if (self->protocols[fd] != protocol) {
            break; /* stopped by a callback: asyncio's SSLProtocol reads from now on */
        }
        if (closed || (at_eof && decrypted < half && !self->paused[fd])) {
            /* close_notify ends the stream at once, as asyncio's SSLProtocol ends it; a TCP
             * end is read again after a pause (the socket stays readable). */
            return deliver(protocol, str_poller_eof, NULL);
        }
        /* Stop when the ssl object is empty, or paused (PolledSocket.resume() reads the rest). */
        if (decrypted < half || self->paused[fd]) {
            break;
        }
    }
    return fw_tls_flush(writer) < 0 ? deliver_raised(protocol) : 0;
}

static int
read_ready(PollerObject *self, int fd, int forced)
{
    PyObject *protocol = self->protocols[fd];
    Py_INCREF(protocol); /* a callback may unregister it */
    int status;
    if (self->tls_writers[fd] != NULL) {
        PyObject *writer = Py_NewRef(self->tls_writers[fd]);
        status = tls_read_ready(self, fd, protocol, forced);
        Py_DECREF(writer);
        Py_DECREF(protocol);
        return status;
    }
    ssize_t received = recv(fd, self->buffer.buf, (size_t)self->buffer.len, 0);
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        status = 0; /* a stale event (the descriptor may have been reused) or a signal */
    }
    else if (received > 0) {
        status = deliver_read(self, protocol, self->receivers[fd], received);
    }
    else if (received == 0) {
        status = deliver(protocol, str_poller_eof, NULL);
    }
    else {
        PyErr_SetFromErrno(PyExc_OSError);
        status = deliver_raised(protocol);
    }
    Py_DECREF(protocol);
    return status;
}

static PyObject *
poller_poll(PollerObject *self, PyObject *unused)
{
    struct epoll_event events[MAX_EVENTS];
    (void)unused;
    int only_fd = self->only_fd;
    if (only_fd >= 0 && !self->paused[only_fd]) {
        /* One socket: it is the one that is ready (or the read finds nothing), so skip the
         * epoll_wait() system call; one connection per loop is the latency-bound case. */
        if (read_ready(self, only_fd, 0) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    int ready = epoll_wait(self->epoll_fd, events, MAX_EVENTS, 0);
    if (ready < 0) {
        if (errno == EINTR) {
            Py_RETURN_NONE;
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    for (int i = 0; i < ready; i++) {
        int fd = events[i].data.fd;
        /* Skip descriptors a callback of this batch unregistered or paused. */
        if (fd < self->capacity && self->protocols[fd] != NULL && !self->paused[fd] &&
            read_ready(self, fd, 0) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
poller_read_now(PollerObject *self, PyObject *arg)
{
    int fd = as_fd(arg);
    if (fd < 0) {
        return NULL;
    }
    /* Gone or paused since it was scheduled: its next resume() schedules it again. */
    if (fd < self->capacity && self->protocols[fd] != NULL && !self->paused[fd] &&
        self->tls_writers[fd] != NULL && read_ready(self, fd, 1) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
poller_fileno(PollerObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(self->epoll_fd);
}

static Py_ssize_t
poller_length(PollerObject *self)
{
    return self->count;
}

static PyMethodDef poller_methods[] = {
    {"register", (PyCFunction)(void (*)(void))poller_register, METH_FASTCALL,
     "register(fd, protocol, receiver=None, tls_writer=None): read fd from now on; protocol "
     "gets buffer_updated(n), poller_eof() and poller_error(exc); a TLS socket's records are "
     "decrypted with the TLS objects of its DirectWriter."},
    {"unregister", (PyCFunction)poller_unregister, METH_O,
     "unregister(fd) -> bool: stop reading fd and forget its protocol."},
    {"pause", (PyCFunction)poller_pause, METH_O, "pause(fd): stop reading fd for now."},
    {"resume", (PyCFunction)poller_resume, METH_O, "resume(fd): read fd again."},
    {"poll", (PyCFunction)poller_poll, METH_NOARGS,
     "poll(): read every ready descriptor once (the event loop calls it)."},
    {"read_now", (PyCFunction)poller_read_now, METH_O,
     "read_now(fd): read a TLS socket's decrypted bytes that wait without a new read."},
    {"fileno", (PyCFunction)poller_fileno, METH_NOARGS,
     "fileno() -> int: the epoll descriptor, to watch for reading."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods poller_sequence = {
    .sq_length = (lenfunc)poller_length,
};

PyTypeObject fw_PollerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.Poller",
    .tp_doc = "Poller(buffer): read many sockets into buffer through one epoll descriptor.",
    .tp_basicsize = sizeof(PollerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = poller_new,
    .tp_traverse = (traverseproc)poller_traverse,
    .tp_clear = (inquiry)poller_clear,
    .tp_dealloc = (destructor)poller_dealloc,
    .tp_methods = poller_methods,
    .tp_as_sequence = &poller_sequence,
};


#endif /* __linux__ */
