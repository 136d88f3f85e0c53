; SnapDesk's Windows installer (Inno Setup 6.3 or newer). Build it on Windows, after the bundle:
;
;     pip install -e .[build]
;     pip uninstall -y opencv-python && pip install --force-reinstall --no-deps opencv-python-headless
;     pyinstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\snapdesk.spec
;     iscc installer.iss                       -> dist\SnapDesk-<version>-setup.exe
;
; The version is the package's: packaging/snapdesk.spec writes it into the bundle
; (_internal\snapdesk\VERSION) and it is read from there, unless given as iscc /DAppVersion=...
; tests/integration/test_packaging.py checks every file named here against the bundle's layout.

#define AppName "SnapDesk"
#define Bundle "dist\SnapDesk"
#define AppExe "snapdesk.exe"
#define WorkerExe "snapdesk-worker.exe"
#ifndef AppVersion
  #define VersionFile FileOpen(AddBackslash(SourcePath) + Bundle + "\_internal\snapdesk\VERSION")
  #if !VersionFile
    #error No dist\SnapDesk\_internal\snapdesk\VERSION: build the bundle first (packaging\snapdesk.spec)
  #endif
  #define AppVersion Trim(FileRead(VersionFile))
  #expr FileClose(VersionFile)
#endif

[Setup]
; Never change the AppId: it is how an upgrade finds the installed SnapDesk.
AppId={{6F1C3E52-8B0A-4D47-9A36-2C51D7E0B9A4}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=SnapDesk
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=dist
OutputBaseFilename=SnapDesk-{#AppVersion}-setup
SetupIconFile=src\snapdesk\resources\snapdesk.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
; Files of a running SnapDesk (the window or its worker) are in use: close those programs first.
CloseApplications=force
RestartApplications=no

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the libraries as a whole: files an older version had and this one does not
; (an old Qt, an old onnxruntime) must not linger beside the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#Bundle}\{#AppExe}"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#Bundle}\{#WorkerExe}"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#Bundle}\_internal\*"; DestDir: "{app}\_internal"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; Explorer: right-click a folder (or the background of an open folder) -> Process with SnapDesk.
Root: HKA; Subkey: "Software\Classes\Directory\shell\SnapDesk"; ValueType: string; ValueName: ""; ValueData: "Process with SnapDesk"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Directory\shell\SnapDesk"; ValueType: string; ValueName: "Icon"; ValueData: """{app}\{#AppExe}"",0"
Root: HKA; Subkey: "Software\Classes\Directory\shell\SnapDesk\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Directory\Background\shell\SnapDesk"; ValueType: string; ValueName: ""; ValueData: "Process with SnapDesk"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Directory\Background\shell\SnapDesk"; ValueType: string; ValueName: "Icon"; ValueData: """{app}\{#AppExe}"",0"
Root: HKA; Subkey: "Software\Classes\Directory\Background\shell\SnapDesk\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%V"""

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Whatever is in the libraries folder, whoever put it there.
Type: filesandordirs; Name: "{app}\_internal"

[Code]
// The library (library.db, queues, thumbnails, logs) and settings live where platformdirs puts
// them for "SnapDesk" with no author: %LOCALAPPDATA%\SnapDesk (config.default_data_dir).
const
  LibraryDir = '{localappdata}\SnapDesk';

// Ask the window and any worker to stop, give them 3 s, then end what still runs (a job a worker
// was running goes back to the queue when the app next opens: its lease runs out).
procedure StopSnapDesk();
var
  Code: Integer;
begin
  Exec(ExpandConstant('{sys}\taskkill.exe'), '/IM {#AppExe} /T', '', SW_HIDE, ewWaitUntilTerminated, Code);
  Exec(ExpandConstant('{sys}\taskkill.exe'), '/IM {#WorkerExe} /T', '', SW_HIDE, ewWaitUntilTerminated, Code);
  Sleep(3000);
  Exec(ExpandConstant('{sys}\taskkill.exe'), '/F /IM {#AppExe} /T', '', SW_HIDE, ewWaitUntilTerminated, Code);
  Exec(ExpandConstant('{sys}\taskkill.exe'), '/F /IM {#WorkerExe} /T', '', SW_HIDE, ewWaitUntilTerminated, Code);
end;

function PrepareToInstall(var NeedsRestart: Boolean): String;
begin
  StopSnapDesk();
  Result := '';
end;

function InitializeUninstall(): Boolean;
begin
  StopSnapDesk();
  Result := True;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Dir: String;
begin
  if CurUninstallStep = usPostUninstall then
  begin
    Dir := ExpandConstant(LibraryDir);
    if DirExists(Dir) and not UninstallSilent() then
      if MsgBox('Also delete your SnapDesk library?' + #13#10 + #13#10 +
                'It holds your sessions, thumbnails, extracted text, summaries and settings, in ' + Dir + '.' +
                #13#10 + 'Your original files are not touched either way.',
                mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
        DelTree(Dir, True, True, True);
  end;
end;
