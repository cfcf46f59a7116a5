/*
 * WebSocketMethods: WebSocket.send() and WebSocket.__anext__ in C, the twin of
 * framewire.aio.ws.websocket_methods.PyWebSocketMethods. framewire.aio.ws.websocket.WebSocket
 * derives from one of the two. These are the two calls every message of an echo-style handler makes
 * (`async for message in ws: await ws.send(...)`); as Python methods their frames cost about a
 * third of the server's own instructions per message (benchmarks/run.py, 64-byte round trips,
 * counted with benchmarks/harness/count_server.py).
 *
 * The state these methods read is declared here, as the type's own slots (_polled, connection,
 * _inbox, _loop: the twin's __slots__), and read from the struct, not looked up by name. What
 * they call back is declared here too, as methods WebSocket overrides (_send, _anext_general,
 * the latter for next_message.c); each raises NotImplementedError until overridden.
 * tests/test_speedups_boundary.py checks both against the twin and WebSocket.
 */

#include "speedups.h"

#ifdef __linux__

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *polled;     /* _polled: the PolledSocket, or None */
    PyObject *connection; /* connection: the sans-I/O Connection */
    PyObject *inbox;      /* _inbox: the Inbox (C or Python) */
    PyObject *loop;       /* _loop: the event loop */
} WebSocketMethodsObject;

static PyObject *str_send_message = NULL;
static PyObject *str_send = NULL;
static PyObject *str_compress = NULL;
static PyObject *str_anext = NULL;

static int
intern_names(void)
{
    if (str_send_message != NULL) {
        return 0;
    }
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&str_send_message, "send_message"}, /* PolledSocket's */
        {&str_send, "_send"},                /* declared below, overridden by WebSocket */
        {&str_compress, "compress"},         /* send()'s keyword */
        {&str_anext, "anext"},               /* the Python Inbox's */
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].text);
        if (*names[i].slot == NULL) {
            return -1;
        }
    }
    return 0;
}

/* The value of a slot, borrowed; NULL with AttributeError when it is unset (or cleared). */
static PyObject *
slot_value(PyObject *value, const char *name)
{
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "WebSocket has no %s yet", name);
    }
    return value;
}

/* The frame went out at once when self._polled.send_message(self.connection, message) says
 * so: 1, else 0, or -1 with an exception set. */
static int
sent_at_once(WebSocketMethodsObject *self, PyObject *message)
{
    PyObject *polled = self->polled;
    if (polled == NULL || polled == Py_None) {
        return 0;
    }
    PyObject *connection = slot_value(self->connection, "connection");
    if (connection == NULL) {
        return -1;
    }
    PyObject *send_message = PyObject_GetAttr(polled, str_send_message);
    if (send_message == NULL) {
        return -1;
    }
    PyObject *args[2] = {connection, message};
    PyObject *sent = PyObject_Vectorcall(send_message, args, 2, NULL);
    Py_DECREF(send_message);
    if (sent == NULL) {
        return -1;
    }
    int result = PyObject_IsTrue(sent);
    Py_DECREF(sent);
    return result;
}

static PyObject *
methods_send(WebSocketMethodsObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    if (intern_names() < 0) {
        return NULL;
    }
    Py_ssize_t keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *compress = Py_True;
    if (keywords == 1) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, 0);
        int is_compress = PyUnicode_Check(name) ? PyUnicode_Compare(name, str_compress) == 0 : 0;
        if (!is_compress) {
            PyErr_Format(PyExc_TypeError, "send() got an unexpected keyword argument %R", name);
            return NULL;
        }
        compress = args[nargs];
    }
    if (nargs != 1 || keywords > 1) {
        PyErr_Format(PyExc_TypeError,
                     "send() takes one message and the keyword argument compress "
                     "(%zd positional and %zd keyword arguments given)",
                     nargs, keywords);
        return NULL;
    }
    PyObject *message = args[0];
    int sent = sent_at_once(self, message);
    if (sent < 0) {
        return NULL;
    }
    if (sent) {
        return Py_NewRef(fw_sent);
    }
    PyObject *call[3] = {(PyObject *)self, message, compress};
    return PyObject_VectorcallMethod(str_send, call, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static PyObject *
methods_anext(WebSocketMethodsObject *self)
{
    if (intern_names() < 0) {
        return NULL;
    }
    PyObject *inbox = slot_value(self->inbox, "_inbox");
    PyObject *loop = inbox == NULL ? NULL : slot_value(self->loop, "_loop");
    if (loop == NULL) {
        return NULL;
    }
    if (Py_IS_TYPE(inbox, &fw_InboxType)) {
        return fw_next_message_new(inbox, (PyObject *)self, loop);
    }
    PyObject *call[3] = {inbox, (PyObject *)self, loop};
    return PyObject_VectorcallMethod(str_anext, call, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* _send() and _anext_general(), declared for WebSocket to override. */
static PyObject *
methods_not_overridden(PyObject *self, const char *name)
{
    PyErr_Format(PyExc_NotImplementedError, "%.100s must override %s()", Py_TYPE(self)->tp_name,
                 name);
    return NULL;
}

static PyObject *
methods_send_general(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "_send() takes a message and compress (%zd given)", nargs);
        return NULL;
    }
    return methods_not_overridden(self, "_send");
}

static PyObject *
methods_anext_general(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return methods_not_overridden(self, "_anext_general");
}

static int
methods_traverse(WebSocketMethodsObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->polled);
    Py_VISIT(self->connection);
    Py_VISIT(self->inbox);
    Py_VISIT(self->loop);
    return 0;
}

/* The cycle collector's clear (the Inbox holds bound methods of the WebSocket): every read of a
 * slot above handles NULL. */
static int
methods_clear(WebSocketMethodsObject *self)
{
    Py_CLEAR(self->polled);
    Py_CLEAR(self->connection);
    Py_CLEAR(self->inbox);
    Py_CLEAR(self->loop);
    return 0;
}

static void
methods_dealloc(WebSocketMethodsObject *self)
{
    PyObject_GC_UnTrack(self);
    methods_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* object.__new__, without the arguments (they are __init__'s, and object.__new__ rejects them
 * when the type has a __new__ of its own). PyType_GenericNew would do but for one thing: on
 * Python 3.11 only object.__new__ prepares an instance's attribute values the way the
 * interpreter's attribute fast paths expect (17,000 more instructions per connection without). */
static PyObject *
methods_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    PyObject *no_arguments = PyTuple_New(0);
    if (no_arguments == NULL) {
        return NULL;
    }
    PyObject *self = PyBaseObject_Type.tp_new(type, no_arguments, NULL);
    Py_DECREF(no_arguments);
    if (self != NULL) {
        ((WebSocketMethodsObject *)self)->polled = Py_NewRef(Py_None); /* until polled */
    }
    return self;
}

static PyMethodDef methods_methods[] = {
    {"send", (PyCFunction)(void (*)(void))methods_send, METH_FASTCALL | METH_KEYWORDS,
     "send($self, message, *, compress=True)\n--\n\n"
     "Send a message; waits while the write buffer is above its high-water mark.\n\n"
     "Use it as a coroutine: ``await ws.send(message)``, or hand it to asyncio.create_task().\n"
     "A small message may be written to the socket during the call itself; the returned\n"
     "coroutine then has nothing left to do.\n\n"
     "Args:\n"
     "    message: ``str`` (text), bytes-like (binary), or an iterable / async iterable of\n"
     "        ``str`` or bytes, sent as one fragmented message of that type.\n"
     "    compress: False to send this message uncompressed even when deflate was negotiated.\n\n"
     "Raises:\n"
     "    ConnectionClosed: the connection is closing or closed.\n"
     "    TypeError: the message is of an unsupported type."},
    {"_send", (PyCFunction)(void (*)(void))methods_send_general, METH_FASTCALL,
     "_send($self, message, compress, /)\n--\n\n"
     "send()'s general path, as a coroutine: WebSocket overrides it."},
    {"_anext_general", (PyCFunction)methods_anext_general, METH_NOARGS,
     "_anext_general($self, /)\n--\n\n"
     "__anext__'s general path, as a coroutine (next_message.c calls it): WebSocket overrides "
     "it."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef methods_members[] = {
    {"_polled", T_OBJECT_EX, offsetof(WebSocketMethodsObject, polled), 0,
     "The PolledSocket when the loop's Poller reads the socket, else None."},
    {"connection", T_OBJECT_EX, offsetof(WebSocketMethodsObject, connection), 0,
     "The sans-I/O Connection."},
    {"_inbox", T_OBJECT_EX, offsetof(WebSocketMethodsObject, inbox), 0,
     "Where received messages wait."},
    {"_loop", T_OBJECT_EX, offsetof(WebSocketMethodsObject, loop), 0, "The event loop."},
    {NULL, 0, 0, 0, NULL},
};

static PyAsyncMethods methods_as_async = {
    .am_anext = (unaryfunc)methods_anext,
};

PyTypeObject fw_WebSocketMethodsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.WebSocketMethods",
    .tp_doc = "WebSocket.send() and __anext__ in C (see framewire.aio.ws.websocket_methods).",
    .tp_basicsize = sizeof(WebSocketMethodsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = methods_new,
    .tp_traverse = (traverseproc)methods_traverse,
    .tp_clear = (inquiry)methods_clear,
    .tp_dealloc = (destructor)methods_dealloc,
    .tp_as_async = &methods_as_async,
    .tp_methods = methods_methods,
    .tp_members = methods_members,
};

#endif /* __linux__ */
