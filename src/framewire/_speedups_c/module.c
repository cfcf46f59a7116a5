/* framewire._speedups: the optional C accelerator. Each piece mirrors a pure-Python twin:
 *
 *   apply_mask          framewire.sansio.mask.py_apply_mask                       (mask.c)
 *   parse_whole_frames  framewire.sansio.whole_frames.py_parse_whole_frames       (frames.c)
 *   parse_field_lines   framewire.sansio.field_lines.py_parse_field_lines         (field_lines.c)
 *   encode_fields       framewire.sansio.http11_encode.py_encode_fields           (field_lines.c)
 *   parse_upgrade_request  framewire.sansio.upgrade_request.py_parse_upgrade_request (upgrade.c)
 *   Poller              none: without it each socket is read by its transport     (poller.c)
 *   DirectWriter        none: without it every write goes through the transport   (direct_writer.c)
 *   SENT                none: send() returns a coroutine when it did not write at once (ditto)
 *   WebSocketMethods    framewire.aio.ws.websocket_methods.PyWebSocketMethods (websocket_methods.c)
 *   Wakeup              framewire.aio.ws.wakeup.PyWakeup                             (wakeup.c)
 *   Inbox               framewire.aio.ws.inbox.PyInbox                               (inbox.c)
 *     its anext()       PyInbox.anext, an async method                     (next_message.c)
 *   PayloadBuffer       none: without it pieces are separate bytes objects (payload_buffer.c)
 *
 * Each module with a twin imports its C piece, typed by _speedups.pyi, when
 * framewire.sansio.speedups.ENABLED says so (FRAMEWIRE_NO_SPEEDUPS=1 turns it all off).
 * The C code imports no framewire module and looks up no private name: Python hands it what
 * it needs, once, at import (use_connection_flags() from sansio/connection.py, in
 * connection_flags.c; use_running_tasks() from aio/ws/wakeup.py, in wakeup.c).
 */

#include "speedups.h"

#ifdef __linux__
PyObject *fw_sent = NULL;
#endif

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
    fw_field_lines_init();
    if (add_type(module, &fw_PayloadBufferType, "PayloadBuffer") < 0 ||
        add_type(module, &fw_InboxType, "Inbox") < 0 ||
        add_type(module, &fw_WakeupType, "Wakeup") < 0 ||
        PyType_Ready(&fw_NextMessageType) < 0) {
        return -1;
    }
#ifdef __linux__
    if (add_type(module, &fw_PollerType, "Poller") < 0 ||
        add_type(module, &fw_DirectWriterType, "DirectWriter") < 0 ||
        PyType_Ready(&fw_CompletedType) < 0) {
        return -1;
    }
    /* Kept for good: WebSocketMethods.send() returns it too. */
    fw_sent = PyType_GenericNew(&fw_CompletedType, NULL, NULL);
    if (fw_sent == NULL || PyModule_AddObjectRef(module, "SENT", fw_sent) < 0) {
        return -1;
    }
    if (add_type(module, &fw_WebSocketMethodsType, "WebSocketMethods") < 0) {
        return -1;
    }
#endif
    return 0;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))fw_apply_mask, METH_FASTCALL | METH_KEYWORDS,
     fw_apply_mask_doc},
    {"parse_whole_frames", (PyCFunction)(void (*)(void))fw_parse_whole_frames, METH_FASTCALL,
     fw_parse_whole_frames_doc},
    {"parse_field_lines", (PyCFunction)(void (*)(void))fw_parse_field_lines, METH_FASTCALL,
     fw_parse_field_lines_doc},
    {"encode_fields", (PyCFunction)fw_encode_fields, METH_O, fw_encode_fields_doc},
    {"parse_upgrade_request", (PyCFunction)(void (*)(void))fw_parse_upgrade_request, METH_FASTCALL,
     fw_parse_upgrade_request_doc},
    {"use_connection_flags", (PyCFunction)(void (*)(void))fw_use_connection_flags, METH_FASTCALL,
     fw_use_connection_flags_doc},
    {"use_running_tasks", (PyCFunction)fw_use_running_tasks, METH_O, fw_use_running_tasks_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* A static type and cached asyncio objects: one interpreter only. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "framewire._speedups",
    .m_doc = "Optional C accelerator of framewire (see framewire.sansio.speedups).",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
