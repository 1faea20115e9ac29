"""Passwords too common to allow (compared without case): the top of the widely published leak
lists (the "most common passwords" tables of the big breaches, e.g. RockYou and the 2011 CSDN
leak of Chinese accounts) and the patterns offices use for admin accounts. Kept as a module, not a
data file, so that a frozen build carries it without a spec entry. Update by adding lines."""

from __future__ import annotations

COMMON_PASSWORDS: frozenset[str] = frozenset("""
000000 00000000 0123456789 1111 111111 11111111 112233 11223344 121212 123123 123123123 123321
1234 12341234 12345 123456 1234567 12345678 123456789 1234567890 123456a 12345qwert 123654789
123abc 123qwe 123qweasd 1314520 131313 147258 147258369 159357 159753 168168 1q2w3e 1q2w3e4r
1q2w3e4r5t 1qaz2wsx 1qazxsw2 1qaz@wsx 2000 222222 333333 444444 5201314 520520 555555 654321
666666 66666666 696969 741852963 7777777 777777 789456 789456123 88888888 888888 987654321 999999
12qwaszx a123456 a12345678 a1b2c3d4 aa123456 aa12345678 aaaaaa abc123 abc12345 abc123456 abc@123
abcd1234 access admin admin123 admin1234 admin888 admin@123 administrator aini1314 amanda andrew
asd123 asd123456 asdf1234 asdfgh asdfghjkl ashley austin baseball batman biteme buster changeme
charlie cheese chelsea computer dallas daniel dragon football freedom george ginger guest harley
hello123 hockey hunter iloveyou iloveyou1 jennifer jessica jordan joshua killer klaster letmein
letmein1 love maggie master matrix matthew michael michelle monkey mustang nicole p@ssw0rd
p@ssword pass pass1234 passw0rd password password1 password12 password123 password1! pepper
princess q1w2e3r4 qazwsx qazwsxedc qq123456 qwe123 qwe123456 qweasd qweasdzxc qwer1234 qwerty
qwerty123 qwertyuiop ranger robert root root123 shadow soccer starwars summer sunshine superman
taylor test test123 test1234 thomas thunder tigger trustno1 welcome welcome1 welcome123 woaini
woaini1314 woaini520 yankees zaq12wsx zxc123 zxc123456 zxcvbn zxcvbnm 1234qwer qwer!234 abc123!
a1234567 a123123 aaa111 aa112233 qq5201314 wang123456 zhang123 li123456 iloveyou520 123456abc
123456789a 12345678a 1234abcd abcdefg abcdefgh 11111111a 147852369 987654 321321 qazqaz 1qa2ws3ed
""".split())
