"""The 导入导出 feature of the GUI: the page (``page``), the census import wizard
(``census_wizard``) and the export and monthly-report dialogs (``export_dialogs``)."""
