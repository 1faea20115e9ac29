"""The registers (实有人口, 户, 楼栋, 场所, 组织, 走访, 事件, 用户): the page with search and filters
(view.py) over a lazily fetched Qt table model (table_model.py) that refreshes changed rows in place."""
