-- A database this restore created and could not fill is removed again (it held nothing before).
DROP DATABASE IF EXISTS :"database";
