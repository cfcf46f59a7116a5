#include "speedups.h"

/* What one queued piece costs beside its payload (its tuple, its object's header, its list
 * slot), charged to max_queue_bytes as PyInbox.PIECE_OVERHEAD is: a message sent as many tiny
 * fragments then pauses reading before it holds more than the budget (ws CVE-2026-48779). */
#define FW_PIECE_OVERHEAD 128

#include <structmember.h>

/* ------------------------------------------------------------------------------------------
 * Inbox: the C twin of framewire.aio.ws.inbox.PyInbox (same methods, same behaviour; see there).
 * Pieces are (data, is_text, last) tuples in a list read from index `head`.
 */

typedef struct {
    PyObject_HEAD
    PyObject *pieces; /* list */
    Py_ssize_t head;
    Py_ssize_t messages;
    Py_ssize_t bytes;
    Py_ssize_t max_queue;
    Py_ssize_t max_queue_bytes;
    PyObject *pause;
    PyObject *resume;
    PyObject *waiter; /* a Wakeup, or NULL */
    int paused;
    int closed;
    char receiving; /* a coroutine is receiving: see PyInbox.receiving */
} InboxObject;


static PyObject *
inbox_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t max_queue, max_queue_bytes;
    PyObject *pause, *resume;
    static char *keywords[] = {"max_queue", "max_queue_bytes", "pause_reading", "resume_reading",
                               NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nnOO:Inbox", keywords, &max_queue,
                                     &max_queue_bytes, &pause, &resume)) {
        return NULL;
    }
    InboxObject *self = (InboxObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->pieces = PyList_New(0);
    if (self->pieces == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->max_queue = max_queue;
    self->max_queue_bytes = max_queue_bytes;
    Py_INCREF(pause);
    self->pause = pause;
    Py_INCREF(resume);
    self->resume = resume;
    return (PyObject *)self;
}

static int
inbox_traverse(InboxObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->pieces);
    Py_VISIT(self->pause);
    Py_VISIT(self->resume);
    Py_VISIT(self->waiter);
    return 0;
}

/* The cycle collector's clear: drop the references that can lead back here (the WebSocket's
 * pause_reading and resume_reading, the waiting task's Wakeup). `pieces` stays until dealloc:
 * every method reads it, and an object in a collected cycle may still call one while the
 * collector clears the others (tests/test_speedups_collector.py). A cycle through a queued
 * piece is broken by the list's own clear. */
static int
inbox_clear(InboxObject *self)
{
    Py_CLEAR(self->pause);
    Py_CLEAR(self->resume);
    Py_CLEAR(self->waiter);
    return 0;
}

static void
inbox_dealloc(InboxObject *self)
{
    PyObject_GC_UnTrack(self);
    inbox_clear(self);
    Py_CLEAR(self->pieces);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Call pause_reading() or resume_reading(): 0, or -1 with an exception set. Nothing to call
 * once the collector cleared the inbox. */
static int
call_hook(PyObject *hook)
{
    if (hook == NULL) {
        return 0;
    }
    PyObject *result = PyObject_CallNoArgs(hook);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* Call pause_reading() if a budget is now exceeded. */
static int
inbox_check_pause(InboxObject *self)
{
    if (!self->paused &&
        (self->messages > self->max_queue || self->bytes > self->max_queue_bytes)) {
        self->paused = 1;
        return call_hook(self->pause);
    }
    return 0;
}

static int
inbox_append(InboxObject *self, PyObject *piece, PyObject *data, int last)
{
    Py_ssize_t size = PyObject_Size(data);
    if (size < 0) {
        return -1;
    }
    if (PyList_Append(self->pieces, piece) < 0) {
        return -1;
    }
    self->bytes += size + FW_PIECE_OVERHEAD;
    if (last) {
        self->messages++;
    }
    return 0;
}

static PyObject *
inbox_put(InboxObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "put() takes data, is_text and last");
        return NULL;
    }
    int last = PyObject_IsTrue(args[2]);
    if (last < 0) {
        return NULL;
    }
    PyObject *piece = PyTuple_Pack(3, args[0], args[1], last ? Py_True : Py_False);
    if (piece == NULL) {
        return NULL;
    }
    int failed = inbox_append(self, piece, args[0], last);
    Py_DECREF(piece);
    if (failed || inbox_check_pause(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
inbox_wake(InboxObject *self, int only_with_pieces)
{
    if (self->waiter == NULL) {
        Py_RETURN_NONE;
    }
    if (only_with_pieces && self->head >= PyList_GET_SIZE(self->pieces)) {
        Py_RETURN_NONE;
    }
    PyObject *waiter = self->waiter;
    self->waiter = NULL;
    PyObject *result = fw_wakeup_resume_now(waiter, NULL);
    Py_DECREF(waiter);
    return result;
}

static PyObject *take_messages(InboxObject *self, PyObject *messages, int wake);

static PyObject *
inbox_take_messages(InboxObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "take_messages() takes a list and wake");
        return NULL;
    }
    int wake = PyObject_IsTrue(args[1]);
    if (wake < 0) {
        return NULL;
    }
    return take_messages(self, args[0], wake);
}

PyObject *
fw_inbox_take_messages(PyObject *inbox, PyObject *messages, int wake)
{
    return take_messages((InboxObject *)inbox, messages, wake);
}

static PyObject *
take_messages(InboxObject *self, PyObject *messages, int wake)
{
    Py_ssize_t count = PyList_GET_SIZE(messages);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *piece = PyList_GET_ITEM(messages, i);
        if (!PyTuple_Check(piece) || PyTuple_GET_SIZE(piece) != 3) {
            PyErr_SetString(PyExc_TypeError, "take_messages(): pieces are (data, is_text, True)");
            return NULL;
        }
        if (inbox_append(self, piece, PyTuple_GET_ITEM(piece, 0), 1) < 0) {
            return NULL;
        }
    }
    if (PyList_SetSlice(messages, 0, count, NULL) < 0 || inbox_check_pause(self) < 0) {
        return NULL;
    }
    if (!wake) {
        Py_RETURN_NONE;
    }
    return inbox_wake(self, 0);
}

static PyObject *
inbox_wake_reader(InboxObject *self, PyObject *Py_UNUSED(ignored))
{
    return inbox_wake(self, 1);
}

static PyObject *
inbox_close(InboxObject *self, PyObject *Py_UNUSED(ignored))
{
    self->closed = 1;
    if (self->waiter == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *waiter = self->waiter;
    self->waiter = NULL;
    PyObject *result = fw_wakeup_resume_soon(waiter, NULL);
    Py_DECREF(waiter);
    return result;
}

/* Remove and return (new reference) the oldest piece; NULL with no error when empty. */
static PyObject *
inbox_pop(InboxObject *self)
{
    PyObject *pieces = self->pieces;
    Py_ssize_t length = PyList_GET_SIZE(pieces);
    Py_ssize_t head = self->head;
    if (head >= length) {
        return NULL;
    }
    PyObject *piece = PyList_GET_ITEM(pieces, head);
    Py_INCREF(piece);
    int failed;
    if (head + 1 == length) {
        failed = PyList_SetSlice(pieces, 0, length, NULL);
        self->head = 0;
    }
    else if (head >= 64 && head * 2 >= length) {
        failed = PyList_SetSlice(pieces, 0, head + 1, NULL); /* compact */
        self->head = 0;
    }
    else {
        Py_INCREF(Py_None);
        failed = PyList_SetItem(pieces, head, Py_None); /* let the piece be freed */
        self->head = head + 1;
    }
    if (failed < 0) {
        Py_DECREF(piece);
        return NULL;
    }
    Py_ssize_t size = PyObject_Size(PyTuple_GET_ITEM(piece, 0));
    if (size < 0) {
        Py_DECREF(piece);
        return NULL;
    }
    self->bytes -= size + FW_PIECE_OVERHEAD;
    int last = PyObject_IsTrue(PyTuple_GET_ITEM(piece, 2));
    if (last < 0) {
        Py_DECREF(piece);
        return NULL;
    }
    if (last) {
        self->messages--;
    }
    if (self->paused && self->messages <= self->max_queue / 2 &&
        self->bytes <= self->max_queue_bytes / 2) {
        self->paused = 0;
        if (call_hook(self->resume) < 0) {
            Py_DECREF(piece);
            return NULL;
        }
    }
    return piece;
}

static PyObject *
inbox_get_nowait(InboxObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *piece = inbox_pop(self);
    if (piece == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return piece;
}

static PyObject *
inbox_next_message(InboxObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->head >= PyList_GET_SIZE(self->pieces)) {
        Py_RETURN_NONE;
    }
    PyObject *head = PyList_GET_ITEM(self->pieces, self->head);
    PyObject *data = PyTuple_GET_ITEM(head, 0);
    if (PyTuple_GET_ITEM(head, 2) != Py_True || !(PyUnicode_CheckExact(data) ||
                                                   PyBytes_CheckExact(data))) {
        Py_RETURN_NONE;
    }
    PyObject *piece = inbox_pop(self);
    if (piece == NULL) {
        return NULL;
    }
    data = PyTuple_GET_ITEM(piece, 0);
    Py_INCREF(data);
    Py_DECREF(piece);
    return data;
}

static PyObject *
inbox_wait(InboxObject *self, PyObject *loop)
{
    PyObject *waiter = fw_wakeup_new(loop);
    if (waiter == NULL) {
        return NULL;
    }
    Py_INCREF(waiter);
    Py_XSETREF(self->waiter, waiter);
    return waiter;
}

static PyObject *
inbox_wait_if_empty(InboxObject *self, PyObject *loop)
{
    if (self->head < PyList_GET_SIZE(self->pieces) || self->closed) {
        Py_RETURN_NONE;
    }
    return inbox_wait(self, loop);
}

static PyObject *
inbox_anext(InboxObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "anext() takes a websocket and a loop");
        return NULL;
    }
    return fw_next_message_new((PyObject *)self, args[0], args[1]);
}

/* For NextMessage (next_message.c), which an Inbox makes. */
PyObject *
fw_inbox_next_message(PyObject *inbox)
{
    return inbox_next_message((InboxObject *)inbox, NULL);
}

PyObject *
fw_inbox_wait_if_empty(PyObject *inbox, PyObject *loop)
{
    return inbox_wait_if_empty((InboxObject *)inbox, loop);
}

int
fw_inbox_receiving(PyObject *inbox)
{
    return ((InboxObject *)inbox)->receiving;
}

void
fw_inbox_set_receiving(PyObject *inbox, int receiving)
{
    ((InboxObject *)inbox)->receiving = (char)receiving;
}

static PyObject *
inbox_get_has_pieces(InboxObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->head < PyList_GET_SIZE(self->pieces));
}

static PyObject *
inbox_get_has_message(InboxObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->messages > 0);
}

static PyObject *
inbox_get_closed(InboxObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
inbox_get_pieces(InboxObject *self, void *Py_UNUSED(closure))
{
    Py_INCREF(self->pieces);
    return self->pieces;
}

static PyMemberDef inbox_members[] = {
    {"max_queue", T_PYSSIZET, offsetof(InboxObject, max_queue), 0,
     "Most complete messages held before reading pauses."},
    {"max_queue_bytes", T_PYSSIZET, offsetof(InboxObject, max_queue_bytes), 0,
     "Most bytes held before reading pauses."},
    {"_messages", T_PYSSIZET, offsetof(InboxObject, messages), READONLY,
     "Whole messages queued (as PyInbox._messages)."},
    {"_bytes", T_PYSSIZET, offsetof(InboxObject, bytes), READONLY,
     "Bytes queued (as PyInbox._bytes)."},
    {"receiving", T_BOOL, offsetof(InboxObject, receiving), 0,
     "True while a coroutine is receiving (as PyInbox.receiving)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef inbox_getset[] = {
    {"has_pieces", (getter)inbox_get_has_pieces, NULL, "True when anything is queued.", NULL},
    {"has_message", (getter)inbox_get_has_message, NULL, "True when a whole message is queued.",
     NULL},
    {"closed", (getter)inbox_get_closed, NULL, "True once close() was called.", NULL},
    {"_pieces", (getter)inbox_get_pieces, NULL, "The list behind the queue (for tests).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef inbox_methods[] = {
    {"put", (PyCFunction)(void (*)(void))inbox_put, METH_FASTCALL,
     "Queue one piece of a message."},
    {"take_messages", (PyCFunction)(void (*)(void))inbox_take_messages, METH_FASTCALL,
     "Move whole messages from a list to the queue; wake the reader if asked."},
    {"wake_reader", (PyCFunction)inbox_wake_reader, METH_NOARGS,
     "Resume the reader waiting in wait(), if any and if anything is queued."},
    {"close", (PyCFunction)inbox_close, METH_NOARGS,
     "No more pieces will come: wake the reader in a later loop turn."},
    {"get_nowait", (PyCFunction)inbox_get_nowait, METH_NOARGS,
     "Return the oldest piece, or None when the queue is empty."},
    {"next_message", (PyCFunction)inbox_next_message, METH_NOARGS,
     "Take the oldest piece if it is a whole message held as str or bytes; else None."},
    {"wait_if_empty", (PyCFunction)inbox_wait_if_empty, METH_O,
     "Return wait(loop) when nothing is queued and the inbox is open, else None."},
    {"anext", (PyCFunction)(void (*)(void))inbox_anext, METH_FASTCALL,
     "anext(websocket, loop): await the next whole message (see PyInbox.anext)."},
    {"wait", (PyCFunction)inbox_wait, METH_O,
     "Return what to await until a piece is queued or the inbox is closed."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject fw_InboxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.Inbox",
    .tp_doc = "Inbox(max_queue, max_queue_bytes, pause_reading, resume_reading).",
    .tp_basicsize = sizeof(InboxObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = inbox_new,
    .tp_traverse = (traverseproc)inbox_traverse,
    .tp_clear = (inquiry)inbox_clear,
    .tp_dealloc = (destructor)inbox_dealloc,
    .tp_members = inbox_members,
    .tp_getset = inbox_getset,
    .tp_methods = inbox_methods,
};
