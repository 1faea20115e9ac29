"""Mediation (三级调处) in the window, one module per part:

- :mod:`.incidents_view` — 事件, every case of the area as a register;
- :mod:`.queue_view` — 待办, the supervisor's queue with bulk actions;
- :mod:`.case_view` — one case, its timeline and the actions the user may take now;
- :mod:`.action_dialog` — the inputs of one action, built from the service's declaration;
- :mod:`.report_form` — 事件上报;
- :mod:`.sweeper` — the overdue sweep in the background;
- :mod:`.dialog_parts` — times, buttons and action names the windows share.
"""
