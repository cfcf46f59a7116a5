/* Optional C accelerator for framewire.sansio.mask and framewire.sansio.whole_frames.
 *
 * apply_mask() mirrors framewire.sansio.mask.py_apply_mask exactly: same arguments, same
 * result, same ValueError for a mask that is not 4 bytes. parse_whole_frames() mirrors
 * framewire.sansio.whole_frames.py_parse_whole_frames, Wakeup framewire.aio.wakeup.PyWakeup
 * and Inbox framewire.aio.inbox.PyInbox; PayloadBuffer has no Python twin (see
 * framewire.sansio.payload_buffer). framewire.sansio.speedups is the only importer.
 *
 * Strategy: XOR bytes one at a time until the output pointer is 8-byte aligned, then XOR 8-byte
 * words with the mask rotated to match that starting offset, then finish the tail bytewise.
 * The input may have any alignment, so words are read with memcpy (compiled to plain loads).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

static void
xor_with_mask(const unsigned char *input, unsigned char *output, Py_ssize_t length,
              const unsigned char *mask)
{
    size_t remaining = (size_t)length;
    size_t phase = 0; /* index into the mask of the next byte */

    /* Bytewise head until the output is word-aligned (PyBytes data usually is already). */
    while (remaining > 0 && ((uintptr_t)output & 7) != 0) {
        *output++ = *input++ ^ mask[phase];
        phase = (phase + 1) & 3;
        remaining--;
    }

    /* Repeat the mask over 8 bytes, starting at the current phase. */
    unsigned char word_mask_bytes[8];
    uint64_t word_mask;
    for (size_t k = 0; k < 8; k++) {
        word_mask_bytes[k] = mask[(phase + k) & 3];
    }
    memcpy(&word_mask, word_mask_bytes, 8);

    /* A counted loop over unsigned words, shaped for speed: Python's CFLAGS (-O3 -fwrapv) do
     * not vectorize a signed `index + 8 <= length` loop but do vectorize this one
     * (benchmarks/mask_bench.py: 1 MiB in 22 us instead of 40 us). */
    size_t words = remaining / 8;
    for (size_t w = 0; w < words; w++) {
        uint64_t word;
        memcpy(&word, input + 8 * w, 8);
        word ^= word_mask;
        memcpy(output + 8 * w, &word, 8);
    }
    input += 8 * words;
    output += 8 * words;
    remaining -= 8 * words;

    /* Tail: a whole number of words leaves the phase unchanged. */
    for (size_t k = 0; k < remaining; k++) {
        output[k] = input[k] ^ mask[(phase + k) & 3];
    }
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask)\n"
"--\n"
"\n"
"Return data XOR-ed with the repeating 4-byte mask (RFC 6455, 5.3).\n"
"\n"
"data is any bytes-like object; mask must be exactly 4 bytes.\n"
"Raises ValueError when the mask is not 4 bytes long.");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const keywords[] = {"data", "mask", NULL};
    PyObject *data_object = NULL;
    PyObject *mask_object = NULL;
    Py_buffer data = {0};
    Py_buffer mask = {0};
    PyObject *contiguous_copy = NULL;
    PyObject *result = NULL;

    (void)module;
    if (kwnames == NULL && nargs == 2) {
        data_object = args[0];
        mask_object = args[1];
    }
    else {
        /* Rare path: keyword arguments. Build a tuple/dict and use the classic parser. */
        PyObject *positional = PyTuple_New(nargs);
        PyObject *keyword_dict = NULL;
        int ok;
        if (positional == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(positional, i, args[i]);
        }
        if (kwnames != NULL) {
            keyword_dict = PyDict_New();
            if (keyword_dict == NULL) {
                Py_DECREF(positional);
                return NULL;
            }
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
                if (PyDict_SetItem(keyword_dict, PyTuple_GET_ITEM(kwnames, i),
                                   args[nargs + i]) < 0) {
                    Py_DECREF(positional);
                    Py_DECREF(keyword_dict);
                    return NULL;
                }
            }
        }
        ok = PyArg_ParseTupleAndKeywords(positional, keyword_dict, "OO:apply_mask",
                                         (char **)keywords, &data_object, &mask_object);
        Py_DECREF(positional);
        Py_XDECREF(keyword_dict);
        if (!ok) {
            return NULL;
        }
    }

    /* The mask first, as in the Python version: a bad mask is a ValueError whatever the data. */
    if (PyObject_GetBuffer(mask_object, &mask, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes, got %zd", mask.len);
        goto exit;
    }
    if (PyObject_GetBuffer(data_object, &data, PyBUF_C_CONTIGUOUS) < 0) {
        /* A strided view (memoryview(b)[::2]) works in Python through bytes(); copy it too. */
        if (!PyErr_ExceptionMatches(PyExc_BufferError)) {
            goto exit;
        }
        PyErr_Clear();
        contiguous_copy = PyBytes_FromObject(data_object);
        if (contiguous_copy == NULL ||
            PyObject_GetBuffer(contiguous_copy, &data, PyBUF_C_CONTIGUOUS) < 0) {
            goto exit;
        }
    }

    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto exit;
    }
    xor_with_mask((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result),
                  data.len, (const unsigned char *)mask.buf);

exit:
    if (data.obj != NULL) {
        PyBuffer_Release(&data);
    }
    PyBuffer_Release(&mask);
    Py_XDECREF(contiguous_copy);
    return result;
}

PyDoc_STRVAR(parse_whole_frames_doc,
"parse_whole_frames(data, masked, max_size, out, /)\n"
"--\n"
"\n"
"Append (payload, is_text, True) to out for each whole, unfragmented, uncompressed text or\n"
"binary frame at the start of data; return the number of bytes those frames took.");

/* Unmasked text payloads up to this size are decoded from a stack buffer. */
#define SMALL_TEXT 2048

static PyObject *
frame_payload(const unsigned char *source, Py_ssize_t length, const unsigned char *mask,
              int is_text)
{
    if (!is_text) {
        PyObject *payload = PyBytes_FromStringAndSize(mask ? NULL : (const char *)source, length);
        if (payload != NULL && mask) {
            xor_with_mask(source, (unsigned char *)PyBytes_AS_STRING(payload), length, mask);
        }
        return payload;
    }
    if (!mask) {
        return PyUnicode_DecodeUTF8((const char *)source, length, NULL);
    }
    if (length <= SMALL_TEXT) {
        unsigned char plain[SMALL_TEXT];
        xor_with_mask(source, plain, length, mask);
        return PyUnicode_DecodeUTF8((const char *)plain, length, NULL);
    }
    PyObject *plain = PyBytes_FromStringAndSize(NULL, length);
    if (plain == NULL) {
        return NULL;
    }
    xor_with_mask(source, (unsigned char *)PyBytes_AS_STRING(plain), length, mask);
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(plain), length, NULL);
    Py_DECREF(plain);
    return text;
}

static PyObject *
parse_whole_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    Py_ssize_t max_size = -1; /* no limit */
    Py_ssize_t position = 0;
    int masked;
    PyObject *out;

    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "parse_whole_frames() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    out = args[3];
    if (!PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "parse_whole_frames(): out must be a list");
        return NULL;
    }
    masked = PyObject_IsTrue(args[1]);
    if (masked < 0) {
        return NULL;
    }
    if (args[2] != Py_None) {
        max_size = PyLong_AsSsize_t(args[2]);
        if (max_size == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (max_size < 0) {
            PyErr_SetString(PyExc_ValueError, "parse_whole_frames(): max_size must be >= 0");
            return NULL;
        }
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    const unsigned char *bytes = (const unsigned char *)data.buf;
    const Py_ssize_t end = data.len;
    const Py_ssize_t header_length = masked ? 6 : 2;

    while (end - position >= header_length) {
        const unsigned char first_byte = bytes[position];
        if (first_byte != 0x81 && first_byte != 0x82) {
            break;
        }
        const unsigned char second_byte = bytes[position + 1];
        if (((second_byte & 0x80) != 0) != (masked != 0)) {
            break;
        }
        Py_ssize_t length = second_byte & 0x7F;
        Py_ssize_t start = position + header_length;
        if (length >= 126) {
            if (length == 127 || end - position < header_length + 2) {
                break;
            }
            length = ((Py_ssize_t)bytes[position + 2] << 8) | bytes[position + 3];
            start += 2;
        }
        if (length > end - start || (max_size >= 0 && length > max_size)) {
            break;
        }
        const int is_text = first_byte == 0x81;
        PyObject *payload = frame_payload(bytes + start, length, masked ? bytes + start - 4 : NULL,
                                          is_text);
        if (payload == NULL) {
            if (is_text && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear(); /* invalid UTF-8: the general path fails the connection */
                break;
            }
            PyBuffer_Release(&data);
            return NULL;
        }
        PyObject *piece = PyTuple_Pack(3, payload, is_text ? Py_True : Py_False, Py_True);
        Py_DECREF(payload);
        if (piece == NULL || PyList_Append(out, piece) < 0) {
            Py_XDECREF(piece);
            PyBuffer_Release(&data);
            return NULL;
        }
        Py_DECREF(piece);
        position = start + length;
    }
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(position);
}

/* ------------------------------------------------------------------------------------------
 * Wakeup: the C twin of framewire.aio.wakeup.Wakeup (same methods, same behaviour; see there).
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

/* asyncio objects, looked up on first use (the module opts out of subinterpreters). */
static PyObject *asyncio_current_task = NULL;
static PyObject *asyncio_current_tasks = NULL; /* Python 3.11's loop -> task dict, or NULL */
static PyObject *asyncio_cancelled_error = NULL;
static PyObject *asyncio_invalid_state_error = NULL;

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
    if (asyncio_current_task != NULL && !PyCFunction_Check(asyncio_current_task)) {
        /* Python 3.11: current_task() is a Python function over the C module's dict of running
         * tasks; read the dict directly (a function call less per message). */
        PyObject *tasks = PyObject_GetAttrString(asyncio, "tasks");
        PyObject *running = tasks == NULL ? NULL : PyObject_GetAttrString(tasks, "_current_tasks");
        Py_XDECREF(tasks);
        if (running != NULL && PyDict_CheckExact(running)) {
            asyncio_current_tasks = running;
        }
        else {
            Py_XDECREF(running);
        }
        PyErr_Clear();
    }
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
wakeup_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *loop;
    static char *keywords[] = {"loop", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Wakeup", keywords, &loop)) {
        return NULL;
    }
    WakeupObject *self = (WakeupObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(loop);
    self->loop = loop;
    return (PyObject *)self;
}

static int
wakeup_traverse(WakeupObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->callback);
    Py_VISIT(self->context);
    return 0;
}

static int
wakeup_clear(WakeupObject *self)
{
    Py_CLEAR(self->loop);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->context);
    return 0;
}

static void
wakeup_dealloc(WakeupObject *self)
{
    PyObject_GC_UnTrack(self);
    wakeup_clear(self);
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

static PyObject *
wakeup_resume_now(WakeupObject *self, PyObject *Py_UNUSED(ignored))
{
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

static PyObject *
wakeup_resume_soon(WakeupObject *self, PyObject *Py_UNUSED(ignored))
{
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

static PyObject *
wakeup_add_done_callback(WakeupObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *callback;
    PyObject *context = Py_None;
    static char *keywords[] = {"", "context", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:add_done_callback", keywords,
                                     &callback, &context)) {
        return NULL;
    }
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
    {"resume_now", (PyCFunction)wakeup_resume_now, METH_NOARGS,
     "Wake the waiting task, running its next step now when that is allowed."},
    {"resume_soon", (PyCFunction)wakeup_resume_soon, METH_NOARGS,
     "Wake the waiting task in a later loop turn, as a Future would."},
    {"get_loop", (PyCFunction)wakeup_get_loop, METH_NOARGS, "The loop the waiting task runs on."},
    {"add_done_callback", (PyCFunction)(void (*)(void))wakeup_add_done_callback,
     METH_VARARGS | METH_KEYWORDS, "Called by the task that awaits this object."},
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

static PyTypeObject WakeupType = {
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

/* ------------------------------------------------------------------------------------------
 * PayloadBuffer (C only; see framewire.sansio.payload_buffer). One large
 * frame's payload is unmasked straight into a bytes object made at its final size, and handed
 * out by take() without a join (see payload_buffer.py for why).
 */

typedef struct {
    PyObject_HEAD
    PyObject *payload; /* a bytes object of the frame's length, filled in place; NULL once taken */
    Py_ssize_t filled;
    Py_ssize_t exports; /* buffer views alive */
} PayloadBufferObject;

static PyObject *
payload_buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t length;
    static char *keywords[] = {"length", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:PayloadBuffer", keywords, &length)) {
        return NULL;
    }
    if (length < 0) {
        PyErr_SetString(PyExc_ValueError, "PayloadBuffer length must be >= 0");
        return NULL;
    }
    PayloadBufferObject *self = (PayloadBufferObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->payload = PyBytes_FromStringAndSize(NULL, length);
    if (self->payload == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
payload_buffer_dealloc(PayloadBufferObject *self)
{
    Py_XDECREF(self->payload);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
payload_buffer_unmask_into(PayloadBufferObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "unmask_into() takes data and mask");
        return NULL;
    }
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was already taken");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes, got %zd", mask.len);
        PyBuffer_Release(&mask);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&mask);
        return NULL;
    }
    Py_ssize_t room = PyBytes_GET_SIZE(self->payload) - self->filled;
    if (data.len > room) {
        PyErr_Format(PyExc_ValueError, "%zd bytes do not fit in the %zd left", data.len, room);
        PyBuffer_Release(&data);
        PyBuffer_Release(&mask);
        return NULL;
    }
    /* The mask's phase follows the payload offset (RFC 6455 5.3: j MOD 4). */
    unsigned char rotated[4];
    const unsigned char *key = (const unsigned char *)mask.buf;
    for (int k = 0; k < 4; k++) {
        rotated[k] = key[(self->filled + k) & 3];
    }
    xor_with_mask((const unsigned char *)data.buf,
                  (unsigned char *)PyBytes_AS_STRING(self->payload) + self->filled, data.len,
                  rotated);
    self->filled += data.len;
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    Py_RETURN_NONE;
}

static PyObject *
payload_buffer_take(PayloadBufferObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_ValueError, "the payload was already taken");
        return NULL;
    }
    if (self->filled != PyBytes_GET_SIZE(self->payload)) {
        PyErr_Format(PyExc_ValueError, "the payload is not complete: %zd of %zd bytes",
                     self->filled, PyBytes_GET_SIZE(self->payload));
        return NULL;
    }
    PyObject *payload = self->payload;
    if (self->exports == 0) {
        self->payload = NULL; /* hand over our reference: nobody else can see it */
        return payload;
    }
    Py_INCREF(payload); /* views still read it: share it (it is complete, never written again) */
    return payload;
}

static PyObject *
payload_buffer_get_filled(PayloadBufferObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->filled);
}

static Py_ssize_t
payload_buffer_length(PayloadBufferObject *self)
{
    return self->payload == NULL ? 0 : PyBytes_GET_SIZE(self->payload);
}

static int
payload_buffer_getbuffer(PayloadBufferObject *self, Py_buffer *view, int flags)
{
    if (self->payload == NULL) {
        PyErr_SetString(PyExc_BufferError, "the payload was already taken");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, PyBytes_AS_STRING(self->payload),
                          PyBytes_GET_SIZE(self->payload), 1, flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
payload_buffer_releasebuffer(PayloadBufferObject *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}

static PyBufferProcs payload_buffer_as_buffer = {
    .bf_getbuffer = (getbufferproc)payload_buffer_getbuffer,
    .bf_releasebuffer = (releasebufferproc)payload_buffer_releasebuffer,
};

static PySequenceMethods payload_buffer_as_sequence = {
    .sq_length = (lenfunc)payload_buffer_length,
};

static PyMethodDef payload_buffer_methods[] = {
    {"unmask_into", (PyCFunction)(void (*)(void))payload_buffer_unmask_into, METH_FASTCALL,
     "Unmask data (the next bytes of the payload) into the buffer with the frame's mask."},
    {"take", (PyCFunction)payload_buffer_take, METH_NOARGS,
     "Return the complete payload as bytes, without copying it."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef payload_buffer_getset[] = {
    {"filled", (getter)payload_buffer_get_filled, NULL, "Bytes written so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PayloadBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "framewire._speedups.PayloadBuffer",
    .tp_doc = "PayloadBuffer(length): one frame's payload, unmasked in place, taken whole.",
    .tp_basicsize = sizeof(PayloadBufferObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = payload_buffer_new,
    .tp_dealloc = (destructor)payload_buffer_dealloc,
    .tp_as_buffer = &payload_buffer_as_buffer,
    .tp_as_sequence = &payload_buffer_as_sequence,
    .tp_methods = payload_buffer_methods,
    .tp_getset = payload_buffer_getset,
};

/* ------------------------------------------------------------------------------------------
 * Inbox: the C twin of framewire.aio.inbox.PyInbox (same methods, same behaviour; see there).
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

static int
inbox_clear(InboxObject *self)
{
    Py_CLEAR(self->pieces);
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
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Call pause_reading() if a budget is now exceeded. */
static int
inbox_check_pause(InboxObject *self)
{
    if (!self->paused &&
        (self->messages > self->max_queue || self->bytes > self->max_queue_bytes)) {
        self->paused = 1;
        PyObject *result = PyObject_CallNoArgs(self->pause);
        if (result == NULL) {
            return -1;
        }
        Py_DECREF(result);
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
    self->bytes += size;
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
    PyObject *result = PyObject_CallMethod(waiter, "resume_now", NULL);
    Py_DECREF(waiter);
    return result;
}

static PyObject *
inbox_take_messages(InboxObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "take_messages() takes a list and wake");
        return NULL;
    }
    PyObject *messages = args[0];
    int wake = PyObject_IsTrue(args[1]);
    if (wake < 0) {
        return NULL;
    }
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
    PyObject *result = PyObject_CallMethod(waiter, "resume_soon", NULL);
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
    self->bytes -= size;
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
        PyObject *result = PyObject_CallNoArgs(self->resume);
        if (result == NULL) {
            Py_DECREF(piece);
            return NULL;
        }
        Py_DECREF(result);
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
    PyObject *waiter = PyObject_CallOneArg((PyObject *)&WakeupType, loop);
    if (waiter == NULL) {
        return NULL;
    }
    Py_INCREF(waiter);
    Py_XSETREF(self->waiter, waiter);
    return waiter;
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
    {"wait", (PyCFunction)inbox_wait, METH_O,
     "Return what to await until a piece is queued or the inbox is closed."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject InboxType = {
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

static int
add_type(PyObject *module, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static int
speedups_exec(PyObject *module)
{
    if (add_type(module, &PayloadBufferType, "PayloadBuffer") < 0 ||
        add_type(module, &InboxType, "Inbox") < 0 ||
        add_type(module, &WakeupType, "Wakeup") < 0) {
        return -1;
    }
    return 0;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL | METH_KEYWORDS,
     apply_mask_doc},
    {"parse_whole_frames", (PyCFunction)(void (*)(void))parse_whole_frames, METH_FASTCALL,
     parse_whole_frames_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* A static type and cached asyncio objects: one interpreter only. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "framewire._speedups",
    .m_doc = "Optional C accelerator for framewire.sansio.mask, .whole_frames and aio.wakeup.",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
