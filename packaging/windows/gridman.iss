; Inno Setup script for the Windows installer of gridman (网格化管理).
; Build on Windows after `pyinstaller packaging\gridman.spec`:
;     iscc /DVersion=0.x.y packaging\windows\gridman.iss
; Installs per user (no administrator rights needed on an office PC) under
; %LOCALAPPDATA%\Programs\gridman. The data folder (database, backups, attachments, logs) is
; %LOCALAPPDATA%\gridman, created by the program on first run: uninstalling never touches it.
; Not built or run on the Linux machines the project is developed on: see README "Installers".

#ifndef Version
  #define Version "0.0.0"
#endif

[Setup]
AppId={{6B1B7E2A-3C0E-4E8E-9B2E-6D0F2A1C7A11}
AppName=gridman 网格化管理
AppVersion={#Version}
AppPublisher=gridman
DefaultDirName={localappdata}\Programs\gridman
DefaultGroupName=gridman 网格化管理
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
OutputDir=..\..\build
OutputBaseFilename=gridman-{#Version}-setup
SetupIconFile=..\gridman.ico
UninstallDisplayIcon={app}\gridman.exe
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible

[Languages]
Name: "chinesesimplified"; MessagesFile: "compiler:Languages\ChineseSimplified.isl"
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"
Name: "addtopath"; Description: "将命令行程序 gridman-cli 加入 PATH / Add gridman-cli to PATH"; Flags: unchecked

[Files]
; the whole PyInstaller folder: gridman.exe (GUI), gridman-cli.exe (console) and their libraries
Source: "..\..\build\dist\gridman\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\gridman 网格化管理"; Filename: "{app}\gridman.exe"
Name: "{group}\gridman 命令行 (CLI)"; Filename: "{cmd}"; Parameters: "/k ""{app}\gridman-cli.exe"" --help"; WorkingDir: "{userdocs}"
Name: "{group}\English interface"; Filename: "{app}\gridman.exe"; Parameters: "--lang en"
Name: "{group}\{cm:UninstallProgram,gridman}"; Filename: "{uninstallexe}"
Name: "{userdesktop}\gridman 网格化管理"; Filename: "{app}\gridman.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\gridman.exe"; Description: "{cm:LaunchProgram,gridman}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; only the program folder; the data folder %LOCALAPPDATA%\gridman stays (residents' records)
Type: filesandordirs; Name: "{app}"

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
    Paths := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;
