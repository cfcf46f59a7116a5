#include "speedups.h"

/* ------------------------------------------------------------------------------------------
 * Wakeup: the C twin of framewire.aio.ws.wakeup.Wakeup (same methods, same behaviour; see there).
 * A future-like object one task awaits; resume_now() runs the task's next step at once.
 */

enum { WAKEUP_PENDING = 0, WAKEUP_RESUMED = 1, WAKEUP_CANCELLED = 2 };

typedef struct {
    PyObject_HEAD
    PyObject *loop;
    PyObject *callback; /* the awaiting task's wakeup, or NULL */
    PyObject *context;  /* its contextvars.Context, or NULL */
    int state;
    int blocking; /* asyncio's _asyncio_future_blocking flag */
    int yielded;  /* the await has suspended once */
} WakeupObject;

/* asyncio's public objects, looked up on first use (the module opts out of subinterpreters). */
static PyObject *asyncio_current_task = NULL;
static PyObject *asyncio_cancelled_error = NULL;
static PyObject *asyncio_invalid_state_error = NULL;
/* The loop -> running task dict that asyncio.current_task() reads where it is a Python function
 * (3.11): reading it directly saves a function call per message. Handed over by
 * use_running_tasks() from aio/ws/wakeup.py (aio/asyncio_internals.py finds it); NULL: call
 * current_task(). */
static PyObject *asyncio_current_tasks = NULL;

const char fw_use_running_tasks_doc[] = PyDoc_STR(
"use_running_tasks(tasks, /)\n"
"--\n"
"\n"
"Hand over the loop -> running task dict that asyncio.current_task() reads, or None to call\n"
"current_task() instead; Wakeup.resume_now() checks it once per message.");

PyObject *
fw_use_running_tasks(PyObject *module, PyObject *tasks)
{
    (void)module;
    if (tasks != Py_None && !PyDict_CheckExact(tasks)) {
        PyErr_SetString(PyExc_TypeError, "use_running_tasks() takes a dict or None");
        return NULL;
    }
    Py_XSETREF(asyncio_current_tasks, tasks == Py_None ? NULL : Py_NewRef(tasks));
    Py_RETURN_NONE;
}

static int
load_asyncio(void)
{
    if (asyncio_current_task != NULL) {
        return 0;
    }
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    if (asyncio == NULL) {
        return -1;
    }
    asyncio_cancelled_error = PyObject_GetAttrString(asyncio, "CancelledError");
    asyncio_invalid_state_error = PyObject_GetAttrString(asyncio, "InvalidStateError");
    asyncio_current_task = PyObject_GetAttrString(asyncio, "current_task");
    Py_DECREF(asyncio);
    if (asyncio_cancelled_error == NULL || asyncio_invalid_state_error == NULL ||
        asyncio_current_task == NULL) {
        Py_CLEAR(asyncio_cancelled_error);
        Py_CLEAR(asyncio_invalid_state_error);
        Py_CLEAR(asyncio_current_task);
        return -1;
    }
    return 0;
}

/* loop.call_soon(callback, self, context=context) */
static int
wakeup_call_soon(WakeupObject *self, PyObject *callback, PyObject *context)
{
    PyObject *call_soon = PyObject_GetAttrString(self->loop, "call_soon");
    if (call_soon == NULL) {
        return -1;
    }
    PyObject *args = PyTuple_Pack(2, callback, (PyObject *)self);
    PyObject *kwargs = args == NULL ? NULL : PyDict_New();
    PyObject *handle = NULL;
    if (kwargs != NULL &&
        PyDict_SetItemString(kwargs, "context", context ? context : Py_None) == 0) {
        handle = PyObject_Call(call_soon, args, kwargs);
    }
    Py_DECREF(call_soon);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    if (handle == NULL) {
        return -1;
    }
    Py_DECREF(handle);
    return 0;
}

static PyObject *
wakeup_alloc(PyTypeObject *type, PyObject *loop)
{
    WakeupObject *self = (WakeupObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->loop = Py_NewRef(loop);
    }
    return (PyObject *)self;
}

/* A new Wakeup for the Inbox's wait(), without parsing arguments (once per message). */
PyObject *
fw_wakeup_new(PyObject *loop)
{
    return wakeup_alloc(&fw_WakeupType, loop);
}

static PyObject *
wakeup_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *loop;
    static char *keywords[] = {"loop", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Wakeup", keywords, &loop)) {
        return NULL;
    }
    return wakeup_alloc(type, loop);
}

static int
wakeup_traverse(WakeupObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->callback);
    Py_VISIT(self->context);
    return 0;
}

/* The cycle collector's clear: drop the waiting task's callback and context (the task holds
 * this Wakeup while it waits). The loop stays until dealloc, as every method may use it; a
 * cycle through the loop is broken by the loop's own objects. */
static int
wakeup_clear(WakeupObject *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->context);
    return 0;
}

static void
wakeup_dealloc(WakeupObject *self)
{
    PyObject_GC_UnTrack(self);
    wakeup_clear(self);
    Py_CLEAR(self->loop);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
wakeup_await(WakeupObject *self)
{
    self->yielded = 0;
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *
wakeup_result_impl(WakeupObject *self)
{
    if (self->state == WAKEUP_CANCELLED) {
        if (load_asyncio() == 0) {
            PyErr_SetNone(asyncio_cancelled_error);
        }
        return NULL;
    }
    if (self->state == WAKEUP_PENDING) {
        if (load_asyncio() == 0) {
            PyErr_SetString(asyncio_invalid_state_error, "Result is not ready.");
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
wakeup_iternext(WakeupObject *self)
{
    if (self->state == WAKEUP_PENDING && !self->yielded) {
        self->yielded = 1;
        self->blocking = 1;
        Py_INCREF(self);
        return (PyObject *)self; /* suspend the task until resumed */
    }
    PyObject *result = wakeup_result_impl(self);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    return NULL; /* StopIteration(None): the await is over */
}

PyObject *
fw_wakeup_resume_now(PyObject *object, PyObject *Py_UNUSED(ignored))
{
    WakeupObject *self = (WakeupObject *)object;
    if (self->state != WAKEUP_PENDING) {
        Py_RETURN_NONE;
    }
    self->state = WAKEUP_RESUMED;
    PyObject *callback = self->callback;
    PyObject *context = self->context;
    self->callback = NULL;
    self->context = NULL;
    if (callback == NULL) {
        Py_XDECREF(context);
        Py_RETURN_NONE;
    }
    PyObject *result = NULL;
    if (load_asyncio() < 0) {
        goto exit;
    }
    int inside_task;
    if (asyncio_current_tasks != NULL) {
        PyObject *running = PyDict_GetItemWithError(asyncio_current_tasks, self->loop);
        if (running == NULL && PyErr_Occurred()) {
            goto exit;
        }
        inside_task = running != NULL && running != Py_None;
    }
    else {
        PyObject *running = PyObject_CallOneArg(asyncio_current_task, self->loop);
        if (running == NULL) {
            goto exit;
        }
        inside_task = running != Py_None;
        Py_DECREF(running);
    }
    if (inside_task) {
        if (wakeup_call_soon(self, callback, context) < 0) {
            goto exit;
        }
        result = Py_None;
        Py_INCREF(result);
        goto exit;
    }
    if (context != NULL && context != Py_None) {
        if (PyContext_Enter(context) < 0) {
            goto exit;
        }
        result = PyObject_CallOneArg(callback, (PyObject *)self);
        if (PyContext_Exit(context) < 0) {
            Py_CLEAR(result);
        }
    }
    else {
        result = PyObject_CallOneArg(callback, (PyObject *)self);
    }
    if (result != NULL) {
        Py_DECREF(result);
        result = Py_None;
        Py_INCREF(result);
    }
exit:
    Py_DECREF(callback);
    Py_XDECREF(context);
    return result;
}

/* End the wait with ``state`` and wake the task in a later loop turn, as a Future would. */
static int
wakeup_finish_soon(WakeupObject *self, int state)
{
    self->state = state;
    PyObject *callback = self->callback;
    PyObject *context = self->context;
    self->callback = NULL;
    self->context = NULL;
    int failed = callback != NULL && wakeup_call_soon(self, callback, context) < 0;
    Py_XDECREF(callback);
    Py_XDECREF(context);
    return failed ? -1 : 0;
}

PyObject *
fw_wakeup_resume_soon(PyObject *object, PyObject *Py_UNUSED(ignored))
{
    WakeupObject *self = (WakeupObject *)object;
    if (self->state == WAKEUP_PENDING && wakeup_finish_soon(self, WAKEUP_RESUMED) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
wakeup_get_loop(WakeupObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self->loop);
    return self->loop;
}

/* add_done_callback(callback, *, context=None), parsed by hand: asyncio's Task calls it with
 * context= at every suspension, and PyArg_ParseTupleAndKeywords costs more than the rest. */
static PyObject *
wakeup_add_done_callback(WakeupObject *self, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    Py_ssize_t nkwargs = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *context = Py_None;
    if (nargs != 1 || nkwargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "add_done_callback() takes one callback and an optional context=");
        return NULL;
    }
    if (nkwargs == 1) {
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "context") != 0) {
            PyErr_Format(PyExc_TypeError,
                         "add_done_callback() got an unexpected keyword argument '%S'",
                         PyTuple_GET_ITEM(kwnames, 0));
            return NULL;
        }
        context = args[1];
    }
    PyObject *callback = args[0];
    if (self->state != WAKEUP_PENDING) {
        if (wakeup_call_soon(self, callback, context == Py_None ? NULL : context) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Py_INCREF(callback);
    Py_XSETREF(self->callback, callback);
    if (context == Py_None) {
        Py_CLEAR(self->context);
    }
    else {
        Py_INCREF(context);
        Py_XSETREF(self->context, context);
    }
    Py_RETURN_NONE;
}

static PyObject *
wakeup_remove_done_callback(WakeupObject *self, PyObject *callback)
{
    if (self->callback != NULL) {
        int equal = PyObject_RichCompareBool(self->callback, callback, Py_EQ);
        if (equal < 0) {
            return NULL;
        }
        if (equal) {
            Py_CLEAR(self->callback);
            Py_CLEAR(self->context);
            return PyLong_FromLong(1);
        }
    }
    return PyLong_FromLong(0);
}

static PyObject *
wakeup_done(WakeupObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->state != WAKEUP_PENDING);
}

static PyObject *
wakeup_cancelled(WakeupObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->state == WAKEUP_CANCELLED);
}

static PyObject *
wakeup_result(WakeupObject *self, PyObject *Py_UNUSED(ignored))
{
    return wakeup_result_impl(self);
}

static PyObject *
wakeup_cancel(WakeupObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *message = Py_None;
    static char *keywords[] = {"msg", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:cancel", keywords, &message)) {
        return NULL;
    }
    if (self->state != WAKEUP_PENDING) {
        Py_RETURN_FALSE;
    }
    if (wakeup_finish_soon(self, WAKEUP_CANCELLED) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
wakeup_get_blocking(WakeupObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->blocking);
}

static int
wakeup_set_blocking(WakeupObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    int flag = value == NULL ? 0 : PyObject_IsTrue(value);
    if (flag < 0) {
        return -1;
    }
    self->blocking = flag;
    return 0;
}

static PyMethodDef wakeup_methods[] = {
    {"resume_now", (PyCFunction)fw_wakeup_resume_now, METH_NOARGS,
     "Wake the waiting task, running its next step now when that is allowed."},
    {"resume_soon", (PyCFunction)fw_wakeup_resume_soon, METH_NOARGS,
     "Wake the waiting task in a later loop turn, as a Future would."},
    {"get_loop", (PyCFunction)wakeup_get_loop, METH_NOARGS, "The loop the waiting task runs on."},
    {"add_done_callback", (PyCFunction)(void (*)(void))wakeup_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS, "Called by the task that awaits this object."},
    {"remove_done_callback", (PyCFunction)wakeup_remove_done_callback, METH_O,
     "Forget callback; return how many were removed."},
    {"done", (PyCFunction)wakeup_done, METH_NOARGS, "True once resumed or cancelled."},
    {"cancelled", (PyCFunction)wakeup_cancelled, METH_NOARGS, "True once cancelled."},
    {"result", (PyCFunction)wakeup_result, METH_NOARGS,
     "Return None, or raise CancelledError if the wait was cancelled."},
    {"exception", (PyCFunction)wakeup_result, METH_NOARGS,
     "Return None, or raise CancelledError if the wait was cancelled."},
    {"cancel", (PyCFunction)(void (*)(void))wakeup_cancel, METH_VARARGS | METH_KEYWORDS,
     "Cancel the wait; the task is woken with CancelledError."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef wakeup_getset[] = {
    {"_asyncio_future_blocking", (getter)wakeup_get_blocking, (setter)wakeup_set_blocking,
     "asyncio's marker of a future-like object that a task should wait for.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyAsyncMethods wakeup_async = {
    .am_await = (unaryfunc)wakeup_await,
};

PyTypeObject fw_WakeupType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.Wakeup",
    .tp_doc = "Wakeup(loop): a one-shot, future-like event that one task awaits.",
    .tp_basicsize = sizeof(WakeupObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = wakeup_new,
    .tp_traverse = (traverseproc)wakeup_traverse,
    .tp_clear = (inquiry)wakeup_clear,
    .tp_dealloc = (destructor)wakeup_dealloc,
    .tp_as_async = &wakeup_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)wakeup_iternext,
    .tp_methods = wakeup_methods,
    .tp_getset = wakeup_getset,
};
