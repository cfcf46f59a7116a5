/*
 * WebSocketMethods: WebSocket.send() and WebSocket.__anext__ in C, the twin of
 * framewire.aio.websocket.PyWebSocketMethods. framewire.aio.websocket.WebSocket derives from
 * one of the two. These are the two calls every message of an echo-style handler makes
 * (`async for message in ws: await ws.send(...)`); as Python methods their frames cost about a
 * third of the server's own instructions per message (benchmarks/run.py, 64-byte round trips,
 * counted with benchmarks/harness/count_server.py).
 *
 * The type has no fields of its own: it reads the WebSocket's attributes by name (_polled,
 * connection, _send, _inbox, _loop), exactly as the Python twin does.
 */

#include "speedups.h"

#ifdef __linux__

static PyObject *str_polled = NULL;
static PyObject *str_send_message = NULL;
static PyObject *str_connection = NULL;
static PyObject *str_send = NULL;
static PyObject *str_compress = NULL;
static PyObject *str_inbox = NULL;
static PyObject *str_loop = NULL;
static PyObject *str_anext = NULL;

static int
intern_names(void)
{
    if (str_polled != NULL) {
        return 0;
    }
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&str_polled, "_polled"},   {&str_send_message, "send_message"},
        {&str_connection, "connection"}, {&str_send, "_send"},
        {&str_compress, "compress"}, {&str_inbox, "_inbox"},
        {&str_loop, "_loop"},       {&str_anext, "anext"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].text);
        if (*names[i].slot == NULL) {
            return -1;
        }
    }
    return 0;
}

/* The frame went out at once when self._polled.send_message(self.connection, message) says
 * so: 1, else 0, or -1 with an exception set. */
static int
sent_at_once(PyObject *self, PyObject *message)
{
    PyObject *polled = PyObject_GetAttr(self, str_polled);
    if (polled == NULL) {
        return -1;
    }
    if (polled == Py_None) {
        Py_DECREF(polled);
        return 0;
    }
    PyObject *send_message = PyObject_GetAttr(polled, str_send_message);
    Py_DECREF(polled);
    if (send_message == NULL) {
        return -1;
    }
    PyObject *connection = PyObject_GetAttr(self, str_connection);
    if (connection == NULL) {
        Py_DECREF(send_message);
        return -1;
    }
    PyObject *args[2] = {connection, message};
    PyObject *sent = PyObject_Vectorcall(send_message, args, 2, NULL);
    Py_DECREF(send_message);
    Py_DECREF(connection);
    if (sent == NULL) {
        return -1;
    }
    int result = PyObject_IsTrue(sent);
    Py_DECREF(sent);
    return result;
}

static PyObject *
methods_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
    PyObject *call[3] = {self, message, compress};
    return PyObject_VectorcallMethod(str_send, call, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static PyObject *
methods_anext(PyObject *self)
{
    if (intern_names() < 0) {
        return NULL;
    }
    PyObject *inbox = PyObject_GetAttr(self, str_inbox);
    if (inbox == NULL) {
        return NULL;
    }
    PyObject *loop = PyObject_GetAttr(self, str_loop);
    if (loop == NULL) {
        Py_DECREF(inbox);
        return NULL;
    }
    PyObject *result;
    if (Py_IS_TYPE(inbox, &fw_InboxType)) {
        result = fw_next_message_new(inbox, self, loop);
    }
    else {
        PyObject *call[3] = {inbox, self, loop};
        result = PyObject_VectorcallMethod(str_anext, call, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                           NULL);
    }
    Py_DECREF(inbox);
    Py_DECREF(loop);
    return result;
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
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods methods_as_async = {
    .am_anext = methods_anext,
};

PyTypeObject fw_WebSocketMethodsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.WebSocketMethods",
    .tp_doc = "WebSocket.send() and __anext__ in C (see framewire.aio.websocket).",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = methods_new,
    .tp_as_async = &methods_as_async,
    .tp_methods = methods_methods,
};

#endif /* __linux__ */
