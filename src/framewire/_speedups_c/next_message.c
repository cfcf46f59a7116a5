#include "speedups.h"

/* ------------------------------------------------------------------------------------------
 * NextMessage: what Inbox.anext(websocket, loop) returns, the C twin of PyInbox.anext (an async
 * method; see there for the behaviour). It is the awaitable behind `async for message in ws`:
 * a coroutine object would cost a frame and about 50 bytecodes per message.
 *
 * It takes a whole message from the queue, or waits for one on a Wakeup (as `await waiter`
 * would: the Wakeup is what the task sees), with the inbox's `receiving` flag set meanwhile.
 * Anything else (a fragmented message, a closed inbox, another receiver) is left to the
 * coroutine websocket._anext_general(), which it then drives to its end (as `await` would):
 * a method WebSocketMethods declares and WebSocket overrides (websocket_methods.c).
 */

enum { FRESH, WAITING, DELEGATING, FINISHED };

typedef struct {
    PyObject_HEAD
    PyObject *inbox;
    PyObject *websocket;
    PyObject *loop;
    PyObject *waiter; /* the Wakeup awaited while WAITING */
    PyObject *inner;  /* websocket._anext_general()'s coroutine while DELEGATING */
    int state;
} NextMessageObject;

static PyObject *str_anext_general = NULL;

PyObject *
fw_next_message_new(PyObject *inbox, PyObject *websocket, PyObject *loop)
{
    if (str_anext_general == NULL) {
        str_anext_general = PyUnicode_InternFromString("_anext_general");
        if (str_anext_general == NULL) {
            return NULL;
        }
    }
    NextMessageObject *self = PyObject_GC_New(NextMessageObject, &fw_NextMessageType);
    if (self == NULL) {
        return NULL;
    }
    self->inbox = Py_NewRef(inbox);
    self->websocket = Py_NewRef(websocket);
    self->loop = Py_NewRef(loop);
    self->waiter = NULL;
    self->inner = NULL;
    self->state = FRESH;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int
next_message_traverse(NextMessageObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->inbox);
    Py_VISIT(self->websocket);
    Py_VISIT(self->loop);
    Py_VISIT(self->waiter);
    Py_VISIT(self->inner);
    return 0;
}

/* Dropped (or cleared by the cycle collector): finished for good, so no later call reads a
 * reference cleared here. */
static int
next_message_clear(NextMessageObject *self)
{
    if (self->state == WAITING && self->inbox != NULL) {
        fw_inbox_set_receiving(self->inbox, 0); /* dropped mid-wait, as `finally:` would */
    }
    self->state = FINISHED;
    Py_CLEAR(self->inbox);
    Py_CLEAR(self->websocket);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->waiter);
    Py_CLEAR(self->inner);
    return 0;
}

static void
next_message_dealloc(NextMessageObject *self)
{
    PyObject_GC_UnTrack(self);
    next_message_clear(self);
    PyObject_GC_Del(self);
}

/* The wait is over (resumed, or ended by an exception): the inbox has no receiver again. */
static void
stop_waiting(NextMessageObject *self)
{
    fw_inbox_set_receiving(self->inbox, 0);
    Py_CLEAR(self->waiter);
}

/* Start websocket._anext_general() and send it its first value. */
static PySendResult
delegate(NextMessageObject *self, PyObject **result)
{
    self->inner = PyObject_CallMethodNoArgs(self->websocket, str_anext_general);
    if (self->inner == NULL) {
        self->state = FINISHED;
        *result = NULL;
        return PYGEN_ERROR;
    }
    self->state = DELEGATING;
    return PyIter_Send(self->inner, Py_None, result);
}

static PySendResult
finish(NextMessageObject *self, PySendResult status)
{
    if (status != PYGEN_NEXT) {
        self->state = FINISHED;
        Py_CLEAR(self->inner);
    }
    return status;
}

/* `await waiter`'s first half: call its __await__ and keep what that returns (a Wakeup returns
 * itself) as the iterator to drive. 0, or -1 with an exception set (then nothing changed). */
static int
start_await(NextMessageObject *self)
{
    PyAsyncMethods *async = Py_TYPE(self->waiter)->tp_as_async;
    if (async == NULL || async->am_await == NULL) {
        PyErr_Format(PyExc_TypeError, "object %.100s can't be used in 'await' expression",
                     Py_TYPE(self->waiter)->tp_name);
        return -1;
    }
    PyObject *iterator = async->am_await(self->waiter);
    if (iterator == NULL) {
        return -1;
    }
    if (Py_TYPE(iterator)->tp_iternext == NULL) {
        PyErr_Format(PyExc_TypeError, "__await__() returned non-iterator of type '%.100s'",
                     Py_TYPE(iterator)->tp_name);
        Py_DECREF(iterator);
        return -1;
    }
    Py_SETREF(self->waiter, iterator);
    return 0;
}

/* 1 when the awaitable is finished with the queued whole message in *result (NULL on error), 0
 * when the queue holds none. */
static int
take_message(NextMessageObject *self, PyObject **result)
{
    PyObject *message = fw_inbox_next_message(self->inbox);
    if (message == Py_None) {
        Py_DECREF(message);
        return 0;
    }
    self->state = FINISHED;
    *result = message;
    return 1;
}

static PySendResult
next_message_am_send(NextMessageObject *self, PyObject *arg, PyObject **result)
{
    switch (self->state) {
    case FRESH:
        if (fw_inbox_receiving(self->inbox)) {
            return finish(self, delegate(self, result));
        }
        if (take_message(self, result)) {
            return *result == NULL ? PYGEN_ERROR : PYGEN_RETURN;
        }
        self->waiter = fw_inbox_wait_if_empty(self->inbox, self->loop);
        if (self->waiter == NULL || self->waiter == Py_None) {
            Py_CLEAR(self->waiter);
            if (PyErr_Occurred()) {
                self->state = FINISHED;
                *result = NULL;
                return PYGEN_ERROR;
            }
            return finish(self, delegate(self, result));
        }
        /* `await waiter`: its __await__, then its first step, which yields the Wakeup to the
         * task. */
        if (start_await(self) < 0) {
            Py_CLEAR(self->waiter);
            self->state = FINISHED;
            *result = NULL;
            return PYGEN_ERROR;
        }
        fw_inbox_set_receiving(self->inbox, 1);
        self->state = WAITING;
        /* fall through */
    case WAITING:
        *result = Py_TYPE(self->waiter)->tp_iternext(self->waiter);
        if (*result != NULL) {
            return PYGEN_NEXT;
        }
        stop_waiting(self);
        if (PyErr_Occurred()) {
            self->state = FINISHED;
            return PYGEN_ERROR;
        }
        if (take_message(self, result)) {
            return *result == NULL ? PYGEN_ERROR : PYGEN_RETURN;
        }
        return finish(self, delegate(self, result));
    case DELEGATING:
        return finish(self, PyIter_Send(self->inner, arg, result));
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        *result = NULL;
        return PYGEN_ERROR;
    }
}

/* Raise StopIteration(value): how a coroutine's send() reports its return value. */
static void
set_stop_iteration(PyObject *value)
{
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return;
    }
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
}

static PyObject *
next_message_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* tp_iternext: one step, the way `yield from` drives an iterator. */
static PyObject *
next_message_iternext(NextMessageObject *self)
{
    PyObject *result;
    PySendResult status = next_message_am_send(self, Py_None, &result);
    if (status == PYGEN_RETURN) {
        if (result != Py_None) {
            set_stop_iteration(result);
        }
        Py_DECREF(result);
        return NULL;
    }
    return result; /* NEXT: the yielded value; ERROR: NULL with the exception set */
}

static PyObject *
next_message_send(NextMessageObject *self, PyObject *value)
{
    PyObject *result;
    PySendResult status = next_message_am_send(self, value, &result);
    if (status == PYGEN_RETURN) {
        set_stop_iteration(result);
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

PyObject *
fw_raise_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes 1 to 3 arguments");
        return NULL;
    }
    PyObject *value = nargs > 1 && args[1] != Py_None ? args[1] : NULL;
    if (PyExceptionInstance_Check(args[0])) {
        PyErr_SetObject((PyObject *)Py_TYPE(args[0]), args[0]);
    }
    else if (PyExceptionClass_Check(args[0])) {
        PyErr_SetObject(args[0], value);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "throw() needs an exception class or instance");
    }
    return NULL;
}

static PyObject *
next_message_throw(NextMessageObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static PyObject *str_throw = NULL;
    if (self->state == DELEGATING) {
        if (str_throw == NULL && (str_throw = PyUnicode_InternFromString("throw")) == NULL) {
            return NULL;
        }
        PyObject *call[4] = {self->inner, NULL, NULL, NULL};
        for (Py_ssize_t i = 0; i < nargs && i < 3; i++) {
            call[i + 1] = args[i];
        }
        PyObject *result = PyObject_VectorcallMethod(
            str_throw, call, (size_t)(nargs < 3 ? nargs : 3) + 1, NULL);
        if (result == NULL) {
            self->state = FINISHED;
            Py_CLEAR(self->inner);
        }
        return result;
    }
    if (self->state == WAITING) {
        stop_waiting(self); /* a Wakeup has no throw(): the exception surfaces here */
    }
    self->state = FINISHED;
    return fw_raise_thrown(args, nargs);
}

static PyObject *
next_message_close(NextMessageObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->state == WAITING) {
        stop_waiting(self);
    }
    self->state = FINISHED;
    if (self->inner != NULL) {
        PyObject *inner = self->inner;
        self->inner = NULL;
        PyObject *result = PyObject_CallMethod(inner, "close", NULL);
        Py_DECREF(inner);
        return result;
    }
    Py_RETURN_NONE;
}

static PyMethodDef next_message_methods[] = {
    {"send", (PyCFunction)next_message_send, METH_O, "send(value): one step, as a coroutine."},
    {"throw", (PyCFunction)(void (*)(void))next_message_throw, METH_FASTCALL,
     "throw(exception): raise it where the await is suspended."},
    {"close", (PyCFunction)next_message_close, METH_NOARGS, "close(): stop waiting."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods next_message_as_async = {
    .am_await = next_message_await,
    .am_send = (sendfunc)next_message_am_send,
};

PyTypeObject fw_NextMessageType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.NextMessage",
    .tp_doc = "The awaitable Inbox.anext() returns: the next whole message.",
    .tp_basicsize = sizeof(NextMessageObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)next_message_traverse,
    .tp_clear = (inquiry)next_message_clear,
    .tp_dealloc = (destructor)next_message_dealloc,
    .tp_as_async = &next_message_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)next_message_iternext,
    .tp_methods = next_message_methods,
};
